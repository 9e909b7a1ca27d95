//! Uploads whose answer is not lost. A server may answer an upload before it has read
//! the body: `401` for a wrong token, `413`, `409`. reqwest's blocking client then fails
//! with "send failed because receiver is gone" and drops the answer, because it stops at
//! the body it could not finish sending. This client is reqwest's async one, on a runtime
//! of its own, which hands back the answer hyper read while the body was still going out;
//! so the user is told `401 Unauthorized`, and why, instead of a broken pipe.

use std::fs::File;
use std::time::Duration;

use anyhow::{Context, Result};
use reqwest::StatusCode;

pub struct Uploader {
    rt: tokio::runtime::Runtime,
    pub client: reqwest::Client,
}

/// What the server answered: its status and the first line of its body.
pub struct Answer {
    pub status: StatusCode,
    pub text: String,
}

impl Uploader {
    /// `follow_redirects: false` for upload APIs where a redirect is an error (twine's).
    pub fn new(follow_redirects: bool) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the uploader")?;
        let policy =
            if follow_redirects { reqwest::redirect::Policy::limited(5) } else { reqwest::redirect::Policy::none() };
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .redirect(policy)
            .user_agent(concat!("airlock/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { rt, client })
    }

    /// A request body streamed from `file`, `size` bytes long (sent with Content-Length).
    pub fn file_body(file: File) -> reqwest::Body {
        reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
            tokio::fs::File::from_std(file),
            256 * 1024,
        ))
    }

    /// Send `req` and read the answer.
    pub fn send(&self, req: reqwest::RequestBuilder) -> reqwest::Result<Answer> {
        self.rt.block_on(async {
            let resp = req.send().await?;
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            Ok(Answer { status, text: text.lines().next().unwrap_or("").trim().to_string() })
        })
    }
}
