//! Python uploads: `POST /repository/<name>/` takes twine's legacy upload form (the
//! `content` file, `:action=file_upload`, `sha256_digest`, `name`, `version`, ...) into
//! the store's Python index `<name>`, as Nexus pypi-hosted does; so `twine upload
//! --repository-url http://HOST/repository/<name>/` and `airlock import --python-upload`
//! work against `airlock serve`. The file is hashed while it is written, checked against
//! `sha256_digest`, and becomes visible (file, then its project page, then the root page)
//! only when complete, under the store's lock. A file name the index already has is
//! `409 Conflict` (twine `--skip-existing` and airlock read it as "already there"), and
//! never replaced, whatever bytes come. Uploads go only into a Python index (a repository
//! with `simple/`) or a new repository.

use axum::extract::{Multipart, Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;

use crate::names;
use crate::pypi;
use crate::store::{PathState, Store};
use crate::target::python::{Dist, file_path, metadata_path, publish};

use super::raw::{Received, RepoKind, discard, receive as receive_file};
use super::{Access, Shared, blocking, lock, refuse, text};

pub async fn upload(State(s): State<Shared>, Path(repo): Path<String>, req: Request) -> Response {
    if let Err(e) = names::repository(&repo) {
        return text(StatusCode::BAD_REQUEST, e.to_string());
    }
    if let Err(r) = s.check(req.headers(), &format!("repository/{repo}"), Access::Write) {
        let (parts, body) = req.into_parts();
        return refuse(&parts.headers, body, r).await;
    }
    let (store, r) = (s.store.clone(), repo.clone());
    if let Err(r) = blocking(move || accepts_uploads(&store, &r)).await.and_then(|r| r) {
        let (parts, body) = req.into_parts();
        return refuse(&parts.headers, body, r).await;
    }
    let multipart = match <Multipart as axum::extract::FromRequest<Shared>>::from_request(req, &s).await {
        Ok(m) => m,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("expected a multipart upload form: {e}")),
    };
    let mut upload = None;
    let result = receive(&s, &repo, multipart, &mut upload).await;
    match result {
        Ok(r) => r,
        Err((status, msg)) => {
            if let Some(up) = upload {
                let store = s.store.clone();
                let _ = blocking(move || discard(&store, &up.id)).await;
            }
            text(status, msg)
        }
    }
}

/// Uploads go into a Python index, or into a repository that does not exist yet.
fn accepts_uploads(store: &Store, repo: &str) -> Result<(), Response> {
    let refused = |msg: String| text(StatusCode::METHOD_NOT_ALLOWED, msg);
    match RepoKind::of(store, repo) {
        RepoKind::Python | RepoKind::New => Ok(()),
        RepoKind::Raw => Err(refused(format!("`{repo}` is a raw repository: PUT files into it, not twine's form"))),
        RepoKind::Apt => Err(refused(format!("`{repo}` is an apt repository: only `airlock import` writes into it"))),
    }
}

type Failure = (StatusCode, String);

/// The largest form field other than the file itself.
const MAX_FIELD: usize = 1 << 20;

fn bad(msg: impl Into<String>) -> Failure {
    (StatusCode::BAD_REQUEST, msg.into())
}

/// Read the form (the file into an upload session file, which `upload` keeps in `file` so
/// that it is dropped on any failure), check it, then place it under the store's lock.
async fn receive(
    s: &Shared,
    repo: &str,
    mut form: Multipart,
    file: &mut Option<Received>,
) -> Result<Response, Failure> {
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut filename = String::new();
    while let Some(mut field) = form.next_field().await.map_err(|e| bad(format!("reading the form: {e}")))? {
        let name = field.name().unwrap_or("").to_string();
        if name == "content" {
            if file.is_some() {
                return Err(bad("the form has two `content` files"));
            }
            filename = field.file_name().unwrap_or("").to_string();
            let up =
                receive_file(s, field).await.map_err(|r| (r.status(), format!("{filename}: the upload failed")))?;
            *file = Some(up);
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
    let Some(up) = file.as_ref() else { return Err(bad("the form has no `content` file")) };
    if let Some(want) = get("sha256_digest")
        && crate::digest::Digest::from_hex(&want.to_ascii_lowercase()).ok() != Some(up.digest)
    {
        return Err(bad(format!("{filename}: the upload hashes to {}, not sha256_digest {want}", up.digest)));
    }
    names::python_file(&filename).map_err(|e| bad(e.to_string()))?;
    let Some(parsed) = pypi::parse_filename(&filename) else {
        return Err(bad(format!("`{filename}` is not a wheel or sdist file name")));
    };
    if let Some(n) = get("name")
        && pypi::normalize(n) != parsed.project
    {
        return Err(bad(format!("{filename} is not a file of `{n}`")));
    }
    let (store, wait, repo) = (s.store.clone(), s.lock_wait, repo.to_string());
    let (id, digest, size) = (up.id.clone(), up.digest, up.size);
    let answer = blocking(move || {
        let answer = place(&store, wait, &repo, parsed.project, &filename, &id, digest, size);
        // Placed, the session file became a blob; otherwise it goes.
        discard(&store, &id);
        answer
    })
    .await
    .map_err(|r| (r.status(), "the upload failed".to_string()))?;
    *file = None;
    answer
}

/// Under the store's lock: put the uploaded file (session `id`) and its core metadata into
/// the index, then its pages. A file name already there is a conflict, whatever its bytes;
/// with the same bytes the pages are written all the same, so an upload that failed before
/// its pages is finished by the next one.
#[allow(clippy::too_many_arguments)]
fn place(
    store: &Store,
    wait: std::time::Duration,
    repo: &str,
    project: String,
    filename: &str,
    id: &str,
    digest: crate::digest::Digest,
    size: u64,
) -> Result<Response, Failure> {
    let Some(_lock) = lock::acquire(store, wait).map_err(internal)? else {
        return Ok(lock::busy());
    };
    accepts_uploads(store, repo).map_err(|r| (r.status(), format!("`{repo}` takes no Python uploads")))?;
    let mut dist = Dist {
        index: repo.to_string(),
        project,
        filename: filename.to_string(),
        digest,
        size,
        metadata: None,
        requires_python: None,
        yanked: None,
    };
    let path = file_path(&dist).map_err(|e| bad(format!("{e:#}")))?;
    let state = store.repository_state(repo, &path, &digest).map_err(internal)?;
    if let PathState::Different(have) = state {
        return Err((
            StatusCode::CONFLICT,
            format!("{filename} already exists with other content ({have}): a published file never changes"),
        ));
    }
    // The metadata comes from the file before anything becomes visible: a wheel without
    // METADATA is refused and leaves nothing.
    let source = match state {
        PathState::Same => store.repository_file(repo, &path).ok_or_else(|| internal("the file went away"))?,
        _ => store.upload_path(id),
    };
    let meta = if filename.ends_with(".whl") {
        Some(pypi::wheel_metadata(&source, filename).map_err(|e| bad(format!("{e:#}")))?)
    } else {
        pypi::sdist_metadata(&source, filename).ok().flatten()
    };
    if let Some(bytes) = &meta {
        dist.requires_python = pypi::Metadata::parse(bytes).get("Requires-Python").map(str::to_string);
        if filename.ends_with(".whl") {
            dist.metadata = Some(store.insert(&mut bytes.as_slice(), None, filename).map_err(internal)?);
        }
    }
    if let PathState::Missing = state {
        store.adopt_upload(id, &digest).map_err(internal)?;
        store.place_in_repository(repo, &path, &digest).map_err(internal)?;
    }
    if let Some((m, _)) = dist.metadata {
        let mp = metadata_path(&dist).map_err(internal)?;
        if let PathState::Missing = store.repository_state(repo, &mp, &m).map_err(internal)? {
            store.place_in_repository(repo, &mp, &m).map_err(internal)?;
        }
    }
    publish(store, &[&dist]).map_err(internal)?;
    if let PathState::Same = state {
        return Err((StatusCode::CONFLICT, format!("{filename} already exists")));
    }
    Ok(text(StatusCode::OK, format!("{filename} uploaded")))
}

fn internal(e: impl std::fmt::Display) -> Failure {
    (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))
}
