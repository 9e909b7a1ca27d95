use anyhow::{Context, bail};
use serde_json::json;

use crate::cli::ServeArgs;
use crate::exit::ExitStatus;
use crate::serve::{Scope, ServeOptions, Token, parse_tokens, run};
use crate::store::Store;

use super::{CmdResult, Ctx};

pub fn serve(args: &ServeArgs, cx: &Ctx) -> CmdResult {
    let root = args.store.clone().unwrap_or_else(crate::dirs::store_dir);
    let store = Store::open(&root)?;
    let mut tokens = Vec::new();
    let read = |f: &std::path::Path, default: Option<&Scope>| -> anyhow::Result<Vec<Token>> {
        let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        parse_tokens(&text, default).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))
    };
    if let Some(f) = &args.token_hashes {
        tokens.extend(read(f, Some(&Scope::write_all()))?);
    }
    if let Some(f) = &args.token_file {
        tokens.extend(read(f, None)?);
    }
    if let Ok(t) = std::env::var("AIRLOCK_SERVE_TOKEN") {
        if t.len() < 16 {
            bail!("AIRLOCK_SERVE_TOKEN is too short: use at least 16 characters");
        }
        tokens.push(Token::from_secret(&t, vec![Scope::write_all()]));
    }
    if args.no_anonymous_read && tokens.is_empty() {
        bail!(
            "--no-anonymous-read needs tokens (--token-file, --token-hashes or AIRLOCK_SERVE_TOKEN), or nobody could read"
        );
    }
    let opts = ServeOptions {
        listen: args.listen,
        tls: args.tls_cert.clone().zip(args.tls_key.clone()),
        tokens,
        anonymous_read: !args.no_anonymous_read,
        access_log: !cx.printer.quiet,
        max_upload: args.max_upload,
        lock_wait: args.write_lock_wait,
        git_allow_force: args.git_allow_force,
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
