use serde_json::json;

use crate::bundle::sign::{KeyId, PublicKey};
use crate::cli::{TrustArgs, TrustCommand};
use crate::exit::ExitStatus;
use crate::trust::TrustStore;

use super::{CmdResult, Ctx};

pub fn trust(args: &TrustArgs, cx: &Ctx) -> CmdResult {
    let list = |site: bool| if site { TrustStore::sites(&cx.config_dir) } else { cx.trust() };
    match &args.command {
        TrustCommand::Add { key, site } => {
            let pk = PublicKey::load(key)?;
            // One role per key: a key in both lists could sign a bundle as a site, or a
            // receipt as the factory.
            if list(!site).keys()?.iter().any(|k| k.id() == pk.id()) {
                let (this, other) = if *site { ("site", "bundle signer") } else { ("bundle signer", "site") };
                anyhow::bail!(
                    "key {} is already trusted as a {other} key; a key trusted as a {this} key must be another key \
                     (`airlock trust remove{} {}` first if it changed roles)",
                    pk.id(),
                    if *site { "" } else { " --site" },
                    pk.id()
                );
            }
            let path = list(*site).add(&pk)?;
            let role = if *site { "site" } else { "bundle signer" };
            cx.printer.data(&json!({"keyId": pk.id().to_string(), "path": path, "site": site}), || {
                format!("trusted {role} key {} ({})", pk.id(), path.display())
            });
        }
        TrustCommand::List { site } => {
            let keys = list(*site).keys()?;
            let rows: Vec<_> =
                keys.iter().map(|k| json!({"keyId": k.id().to_string(), "publicKey": k.base64()})).collect();
            cx.printer.data(&rows, || keys.iter().map(|k| format!("{}  {}\n", k.id(), k.base64())).collect());
        }
        TrustCommand::Remove { key_id, site } => {
            let id: KeyId = key_id.parse()?;
            list(*site).remove(&id)?;
            cx.printer.data(&json!({"removed": id.to_string()}), || format!("key {id} is no longer trusted"));
        }
    }
    Ok(ExitStatus::Success)
}
