use serde_json::json;

use crate::bundle::sign::{KeyId, PublicKey};
use crate::cli::{TrustArgs, TrustCommand};
use crate::exit::ExitStatus;

use super::{CmdResult, Ctx};

pub fn trust(args: &TrustArgs, cx: &Ctx) -> CmdResult {
    let store = cx.trust();
    match &args.command {
        TrustCommand::Add { key } => {
            let pk = PublicKey::load(key)?;
            let path = store.add(&pk)?;
            cx.printer.data(&json!({"keyId": pk.id().to_string(), "path": path}), || {
                format!("trusted key {} ({})", pk.id(), path.display())
            });
        }
        TrustCommand::List => {
            let keys = store.keys()?;
            let rows: Vec<_> =
                keys.iter().map(|k| json!({"keyId": k.id().to_string(), "publicKey": k.base64()})).collect();
            cx.printer.data(&rows, || keys.iter().map(|k| format!("{}  {}\n", k.id(), k.base64())).collect());
        }
        TrustCommand::Remove { key_id } => {
            let id: KeyId = key_id.parse()?;
            store.remove(&id)?;
            cx.printer.data(&json!({"removed": id.to_string()}), || format!("key {id} is no longer trusted"));
        }
    }
    Ok(ExitStatus::Success)
}
