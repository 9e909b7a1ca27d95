use anyhow::{Context, bail};
use serde_json::json;

use crate::cli::ServeArgs;
use crate::digest::Digest;
use crate::exit::ExitStatus;
use crate::serve::{ServeOptions, run};
use crate::store::Store;

use super::{CmdResult, Ctx};

pub fn serve(args: &ServeArgs, cx: &Ctx) -> CmdResult {
    let root = args.store.clone().unwrap_or_else(crate::dirs::store_dir);
    let store = Store::open(&root)?;
    let mut tokens = Vec::new();
    if let Some(f) = &args.token_hashes {
        let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        for (i, line) in text.lines().map(str::trim).enumerate().filter(|(_, l)| !l.is_empty() && !l.starts_with('#')) {
            let hex = line.strip_prefix("sha256:").unwrap_or(line).split_whitespace().next().unwrap_or("");
            let d =
                Digest::from_hex(hex).with_context(|| format!("{} line {}: not a sha256 hash", f.display(), i + 1))?;
            tokens.push(d);
        }
    }
    if let Ok(t) = std::env::var("AIRLOCK_SERVE_TOKEN") {
        if t.len() < 16 {
            bail!("AIRLOCK_SERVE_TOKEN is too short: use at least 16 characters");
        }
        tokens.push(Digest::of(t.as_bytes()));
    }
    if args.no_anonymous_read && tokens.is_empty() {
        bail!("--no-anonymous-read needs tokens (--token-hashes or AIRLOCK_SERVE_TOKEN), or nobody could read");
    }
    let opts = ServeOptions {
        listen: args.listen,
        tls: args.tls_cert.clone().zip(args.tls_key.clone()),
        tokens,
        anonymous_read: !args.no_anonymous_read,
        access_log: !cx.printer.quiet,
        max_upload: args.max_upload,
    };
    let printer = cx.printer;
    let scheme = if opts.tls.is_some() { "https" } else { "http" };
    run(store, opts, |addr| {
        printer.data(&json!({"listening": format!("{scheme}://{addr}"), "store": root}), || {
            format!("listening on {scheme}://{addr} (store {})", root.display())
        });
    })?;
    Ok(ExitStatus::Success)
}
