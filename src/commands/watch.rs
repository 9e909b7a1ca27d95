use crate::cli::WatchArgs;
use crate::exit::ExitStatus;
use crate::net::NetOptions;
use crate::watch::refresh::Config;
use crate::watch::{Secrets, WatchOptions, run};

use super::{CmdResult, Ctx};

pub fn watch(args: &WatchArgs, cx: &Ctx) -> CmdResult {
    let secrets = Secrets::load(args.secrets_file.as_deref())?;
    let cfg = Config {
        spec: args.spec.clone(),
        lock: args.lock.clone().unwrap_or_else(|| args.spec.with_extension("lock")),
        cache: args.cache_dir.clone().unwrap_or_else(crate::dirs::cache_dir),
        out: args.out.clone(),
        since: args.since.clone(),
        since_receipt: args.since_receipt.clone(),
        key: Some(args.key.clone().unwrap_or_else(|| cx.default_secret_key())),
        compression: args.compression,
        split: args.split,
        net: NetOptions {
            retries: args.retries,
            backoff: std::time::Duration::from_millis(500),
            timeout: args.timeout,
            connect_timeout: args.connect_timeout,
        },
        config_dir: cx.config_dir.clone(),
    };
    // Fail now, not at the first refresh, on a key that cannot be read.
    crate::bundle::sign::SecretKey::load(cfg.key.as_deref().expect("set above"))?;
    let opts = WatchOptions {
        cfg,
        listen: args.listen,
        secrets,
        max_body: args.max_body,
        debounce: args.debounce,
        poll: args.poll,
        poll_kind: args.poll_kind.clone(),
    };
    run(opts, cx.printer)?;
    Ok(ExitStatus::Success)
}
