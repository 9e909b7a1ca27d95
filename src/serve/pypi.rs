//! Python uploads: `POST /repository/<name>/` takes twine's legacy upload form (the
//! `content` file, `:action=file_upload`, `sha256_digest`, `name`, `version`, ...) into
//! the store's Python index `<name>`, as Nexus pypi-hosted does; so `twine upload
//! --repository-url http://HOST/repository/<name>/` and `airlock import --python-upload`
//! work against `airlock serve`. The file is hashed while it is written, checked against
//! `sha256_digest`, and becomes visible (file, then its project page, then the root page)
//! only when complete. A file name the index already has is `409 Conflict`, which twine
//! `--skip-existing` and airlock read as "already there".

use std::io::Write;

use axum::extract::{Multipart, Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;

use crate::digest::Digest;
use crate::pypi;
use crate::spec::valid_name;
use crate::store::{BlobWriter, PathState};
use crate::target::python::{Dist, file_path, metadata_path, publish};

use super::{Shared, text, unauthorized};

pub async fn upload(State(s): State<Shared>, Path(repo): Path<String>, req: Request) -> Response {
    if !valid_name(&repo) {
        return text(StatusCode::BAD_REQUEST, "invalid repository name");
    }
    if !s.allowed(req.headers(), true) {
        return unauthorized();
    }
    let multipart = match <Multipart as axum::extract::FromRequest<Shared>>::from_request(req, &s).await {
        Ok(m) => m,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("expected a multipart upload form: {e}")),
    };
    match receive(&s, &repo, multipart).await {
        Ok(r) => r,
        Err((status, msg)) => text(status, msg),
    }
}

type Failure = (StatusCode, String);

/// The largest form field other than the file itself.
const MAX_FIELD: usize = 1 << 20;

fn bad(msg: impl Into<String>) -> Failure {
    (StatusCode::BAD_REQUEST, msg.into())
}

async fn receive(s: &Shared, repo: &str, mut form: Multipart) -> Result<Response, Failure> {
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut file: Option<(String, Digest, u64)> = None;
    while let Some(mut field) = form.next_field().await.map_err(|e| bad(format!("reading the form: {e}")))? {
        let name = field.name().unwrap_or("").to_string();
        if name == "content" {
            let filename = field.file_name().unwrap_or("").to_string();
            let mut w: BlobWriter = s.store.writer().map_err(internal)?;
            let mut len = 0u64;
            while let Some(chunk) = field.chunk().await.map_err(|e| bad(format!("reading {filename}: {e}")))? {
                len += chunk.len() as u64;
                if len > s.max_upload {
                    return Err((
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("uploads are limited to {} bytes (airlock serve --max-upload)", s.max_upload),
                    ));
                }
                tokio::task::block_in_place(|| w.write_all(&chunk)).map_err(internal)?;
            }
            let (digest, size) = tokio::task::block_in_place(|| w.commit(None, &filename)).map_err(internal)?;
            file = Some((filename, digest, size));
        } else {
            // Metadata fields are small; a description is the largest. Bounded all the same.
            let mut value = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(|e| bad(format!("reading field {name}: {e}")))? {
                if value.len() + chunk.len() > MAX_FIELD {
                    return Err((
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("form field `{name}` is over {MAX_FIELD} bytes"),
                    ));
                }
                value.extend_from_slice(&chunk);
            }
            if name != "gpg_signature" && name != "attestations" {
                fields.push((name, String::from_utf8_lossy(&value).into_owned()));
            }
        }
    }
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get(":action") != Some("file_upload") {
        return Err(bad("`:action` must be `file_upload`"));
    }
    let Some((filename, digest, size)) = file else { return Err(bad("the form has no `content` file")) };
    if let Some(want) = get("sha256_digest")
        && Digest::from_hex(&want.to_ascii_lowercase()).ok() != Some(digest)
    {
        return Err(bad(format!("{filename}: the upload hashes to {digest}, not sha256_digest {want}")));
    }
    let Some(parsed) = pypi::parse_filename(&filename).filter(|_| !filename.contains(['/', '\\'])) else {
        return Err(bad(format!("`{filename}` is not a wheel or sdist file name")));
    };
    if let Some(n) = get("name")
        && pypi::normalize(n) != parsed.project
    {
        return Err(bad(format!("{filename} is not a file of `{n}`")));
    }
    let store = s.store.clone();
    let repo = repo.to_string();
    tokio::task::spawn_blocking(move || -> Result<Response, Failure> {
        // One writer of the store's repositories at a time: other uploads, and imports
        // (which hold the same lock for their whole run).
        let lock = std::fs::File::create(store.root().join(".import.lock")).map_err(internal)?;
        lock.lock().map_err(internal)?;
        let mut dist = Dist {
            index: repo.clone(),
            project: parsed.project,
            filename: filename.clone(),
            digest,
            size,
            metadata: None,
            requires_python: None,
            yanked: None,
        };
        let path = file_path(&dist).map_err(|e| bad(format!("{e:#}")))?;
        let state = store.repository_state(&repo, &path, &digest).map_err(internal)?;
        if let PathState::Different(_) = state {
            return Err((StatusCode::CONFLICT, format!("{filename} already exists with other content")));
        }
        let blob = store.blob_path_for_tool(&digest);
        let meta = if filename.ends_with(".whl") {
            Some(pypi::wheel_metadata(&blob, &filename).map_err(|e| bad(format!("{e:#}")))?)
        } else {
            pypi::sdist_metadata(&blob, &filename).ok().flatten()
        };
        if let Some(bytes) = &meta {
            dist.requires_python = pypi::Metadata::parse(bytes).get("Requires-Python").map(str::to_string);
            if filename.ends_with(".whl") {
                dist.metadata = Some(store.insert(&mut bytes.as_slice(), None, &filename).map_err(internal)?);
            }
        }
        if let PathState::Missing = state {
            store.place_in_repository(&repo, &path, &digest).map_err(internal)?;
        }
        if let Some((m, _)) = dist.metadata {
            let mp = metadata_path(&dist).map_err(internal)?;
            if let PathState::Missing = store.repository_state(&repo, &mp, &m).map_err(internal)? {
                store.place_in_repository(&repo, &mp, &m).map_err(internal)?;
            }
        }
        // Also when the file was already there: an upload that failed before its pages
        // is finished by the next one.
        publish(&store, &[&dist]).map_err(internal)?;
        if let PathState::Same = state {
            return Err((StatusCode::CONFLICT, format!("{filename} already exists")));
        }
        Ok(text(StatusCode::OK, format!("{filename} uploaded")))
    })
    .await
    .map_err(internal)?
}

fn internal(e: impl std::fmt::Display) -> Failure {
    (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))
}
