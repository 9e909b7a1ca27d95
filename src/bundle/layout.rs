//! The OCI image layout a bundle doubles as when it carries images: `oci-layout` and
//! `index.json` beside `blobs/sha256/`, so `skopeo copy oci:<unpacked bundle>:<name> ...`
//! reads images straight from an unpacked bundle. Both files are derived from the signed
//! manifest, and verify rebuilds them and compares byte for byte.

use serde_json::json;

use crate::oci::{IMAGE_NAME, LAYOUT_BYTES, LAYOUT_FILE, LAYOUT_INDEX, OCI_INDEX, REF_NAME, Reference};

use super::manifest::{Kind, Manifest};

/// The layout members (name, bytes) for `m`, in bundle order; none without images.
pub fn members(m: &Manifest) -> Vec<(&'static str, Vec<u8>)> {
    let descriptors: Vec<serde_json::Value> = m
        .artifacts
        .iter()
        .filter(|a| a.kind == Kind::Image)
        .filter_map(|a| {
            let top = a.blobs.first()?;
            let blob = m.blobs.iter().find(|b| b.digest == *top);
            let (size, media_type) = match blob {
                Some(b) => (b.size, b.media_type.clone()),
                None => (a.top_size?, a.top_media_type.clone()?),
            };
            let layout_name = Reference::parse(&a.name).map(|r| r.layout_name()).unwrap_or_else(|_| a.name.clone());
            Some(json!({
                "mediaType": media_type,
                "digest": top.to_string(),
                "size": size,
                "annotations": { IMAGE_NAME: a.name, REF_NAME: layout_name },
            }))
        })
        .collect();
    if descriptors.is_empty() {
        return Vec::new();
    }
    let index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors });
    let mut index_bytes = serde_json::to_vec_pretty(&index).expect("index serializes");
    index_bytes.push(b'\n');
    vec![(LAYOUT_FILE, LAYOUT_BYTES.to_vec()), (LAYOUT_INDEX, index_bytes)]
}
