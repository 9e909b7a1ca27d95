use std::io::IsTerminal;

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::bundle::sign::{self, PASSWORD_ENV, PublicKey};
use crate::cli::{KeyArgs, KeyCommand};
use crate::exit::ExitStatus;
use crate::store::AtomicFile;

use super::{CmdResult, Ctx};

pub fn key(args: &KeyArgs, cx: &Ctx) -> CmdResult {
    match &args.command {
        KeyCommand::Generate { output_dir, name, no_password, force, trust } => {
            let dir = output_dir.clone().unwrap_or_else(|| cx.config_dir.join("keys"));
            let (sk_path, pk_path) = (dir.join(format!("{name}.key")), dir.join(format!("{name}.pub")));
            if !force && (sk_path.exists() || pk_path.exists()) {
                bail!(
                    "{} already exists: pass --force to replace it (sites that trust the old key must then trust the new one)",
                    sk_path.display()
                );
            }
            let password = if *no_password { None } else { Some(password()?) };
            let (sk_text, pk) = sign::generate(password)?;
            let mut f = AtomicFile::new(&sk_path).with_context(|| format!("creating {}", sk_path.display()))?;
            f.set_permissions(0o600)?;
            std::io::Write::write_all(&mut f, sk_text.as_bytes())?;
            f.commit().with_context(|| format!("writing {}", sk_path.display()))?;
            crate::store::atomic::write(&pk_path, pk.text().as_bytes())
                .with_context(|| format!("writing {}", pk_path.display()))?;
            let trusted = if *trust { Some(cx.trust().add(&pk)?) } else { None };
            cx.printer.data(
                &json!({"keyId": pk.id().to_string(), "secretKey": sk_path, "publicKey": pk_path, "trusted": trusted.is_some()}),
                || {
                    format!(
                        "key {} written\n  secret: {}\n  public: {}{}\n",
                        pk.id(),
                        sk_path.display(),
                        pk_path.display(),
                        if trusted.is_some() { "\n  trusted on this machine" } else { "" }
                    )
                },
            );
            Ok(ExitStatus::Success)
        }
        KeyCommand::Show { key } => {
            let path = key.clone().unwrap_or_else(|| cx.config_dir.join("keys").join("airlock.pub"));
            let pk = PublicKey::load(&path)?;
            cx.printer.data(&json!({"keyId": pk.id().to_string(), "publicKey": pk.base64()}), || {
                format!("key id {}\n{}", pk.id(), pk.text())
            });
            Ok(ExitStatus::Success)
        }
    }
}

fn password() -> Result<String> {
    if let Ok(p) = std::env::var(PASSWORD_ENV) {
        if p.is_empty() {
            bail!("{PASSWORD_ENV} is empty: set a passphrase, or pass --no-password");
        }
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        bail!("a passphrase is needed: set {PASSWORD_ENV}, run on a terminal, or pass --no-password");
    }
    let p1 = minisign_prompt("Passphrase for the new secret key: ")?;
    let p2 = minisign_prompt("Passphrase again: ")?;
    if p1 != p2 {
        bail!("the passphrases differ");
    }
    if p1.is_empty() {
        bail!("an empty passphrase protects nothing: pass --no-password instead");
    }
    Ok(p1)
}

fn minisign_prompt(prompt: &str) -> Result<String> {
    #[allow(clippy::print_stderr)]
    {
        eprint!("{prompt}");
    }
    let mut s = String::new();
    std::io::stdin().read_line(&mut s)?;
    Ok(s.trim_end_matches(['\n', '\r']).to_string())
}
