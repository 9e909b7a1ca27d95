use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::bundle::sign::{self, PASSWORD_ENV, PublicKey};
use crate::cli::{AptKeyCommand, KeyArgs, KeyCommand};
use crate::debian::openpgp::{APT_PASSWORD_ENV, SiteKey, public_key_files};
use crate::exit::ExitStatus;
use crate::store::AtomicFile;

use super::{CmdResult, Ctx};

/// The file name stem of the site key (`<config-dir>/keys/site.{key,pub}`).
pub const SITE_KEY_NAME: &str = "site";

pub fn key(args: &KeyArgs, cx: &Ctx) -> CmdResult {
    match &args.command {
        KeyCommand::Generate { output_dir, name, site, no_password, force, trust } => {
            let dir = output_dir.clone().unwrap_or_else(|| cx.config_dir.join("keys"));
            let name = if *site { SITE_KEY_NAME } else { name.as_str() };
            let password = if *no_password { None } else { Some(password()?) };
            let (sk_path, pk_path, pk) = write_pair(&dir, name, password, *force)?;
            let trusted = if *trust { Some(cx.trust().add(&pk)?) } else { None };
            cx.printer.data(
                &json!({"keyId": pk.id().to_string(), "secretKey": sk_path, "publicKey": pk_path, "trusted": trusted.is_some(), "site": site}),
                || {
                    format!(
                        "{}key {} written\n  secret: {}\n  public: {}{}\n",
                        if *site { "site " } else { "" },
                        pk.id(),
                        sk_path.display(),
                        pk_path.display(),
                        if trusted.is_some() {
                            "\n  trusted on this machine"
                        } else if *site {
                            "\n  give the public key to the mirror factory: `airlock trust add --site site.pub` there"
                        } else {
                            ""
                        }
                    )
                },
            );
            Ok(ExitStatus::Success)
        }
        KeyCommand::Apt { command } => apt_key(command, cx),
        KeyCommand::Show { key, site } => {
            let default = if *site { site_key_paths(cx).1 } else { cx.config_dir.join("keys").join("airlock.pub") };
            let path = key.clone().unwrap_or(default);
            let pk = PublicKey::load(&path)?;
            cx.printer.data(&json!({"keyId": pk.id().to_string(), "publicKey": pk.base64()}), || {
                format!("key id {}\n{}", pk.id(), pk.text())
            });
            Ok(ExitStatus::Success)
        }
    }
}

/// The site key's secret and public files.
pub fn site_key_paths(cx: &Ctx) -> (PathBuf, PathBuf) {
    let dir = cx.config_dir.join("keys");
    (dir.join(format!("{SITE_KEY_NAME}.key")), dir.join(format!("{SITE_KEY_NAME}.pub")))
}

/// Write a new minisign key pair `<dir>/<name>.key` (mode 0600) and `<dir>/<name>.pub`;
/// an existing one is replaced only with `force`.
pub fn write_pair(
    dir: &Path,
    name: &str,
    password: Option<String>,
    force: bool,
) -> Result<(PathBuf, PathBuf, PublicKey)> {
    let (sk_path, pk_path) = (dir.join(format!("{name}.key")), dir.join(format!("{name}.pub")));
    if !force && (sk_path.exists() || pk_path.exists()) {
        bail!(
            "{} already exists: pass --force to replace it (those who trust the old key must then trust the new one)",
            sk_path.display()
        );
    }
    let (sk_text, pk) = sign::generate(password)?;
    let mut f = AtomicFile::new(&sk_path).with_context(|| format!("creating {}", sk_path.display()))?;
    f.set_permissions(0o600)?;
    std::io::Write::write_all(&mut f, sk_text.as_bytes())?;
    f.commit().with_context(|| format!("writing {}", sk_path.display()))?;
    crate::store::atomic::write(&pk_path, pk.text().as_bytes())
        .with_context(|| format!("writing {}", pk_path.display()))?;
    Ok((sk_path, pk_path, pk))
}

fn apt_key(command: &AptKeyCommand, cx: &Ctx) -> CmdResult {
    match command {
        AptKeyCommand::Generate { output_dir, name, user_id, no_password, force } => {
            let dir = output_dir.clone().unwrap_or_else(|| cx.config_dir.join("keys"));
            let sk_path = dir.join(format!("{name}.key"));
            if !force && sk_path.exists() {
                bail!(
                    "{} already exists: pass --force to replace it (apt clients must then be given the new public key)",
                    sk_path.display()
                );
            }
            let password = if *no_password { None } else { Some(password_from(APT_PASSWORD_ENV)?) };
            let armored = SiteKey::generate(user_id, password)?;
            let mut f = AtomicFile::new(&sk_path).with_context(|| format!("creating {}", sk_path.display()))?;
            f.set_permissions(0o600)?;
            std::io::Write::write_all(&mut f, armored.as_bytes())?;
            f.commit().with_context(|| format!("writing {}", sk_path.display()))?;
            write_apt_public(&sk_path, &dir, name, cx)
        }
        AptKeyCommand::Export { key, output_dir, name } => {
            let sk_path = key.clone().unwrap_or_else(|| cx.config_dir.join("keys").join("apt.key"));
            write_apt_public(&sk_path, output_dir, name, cx)
        }
    }
}

fn write_apt_public(sk_path: &std::path::Path, dir: &std::path::Path, name: &str, cx: &Ctx) -> CmdResult {
    let pk = SiteKey::load_public(sk_path)?;
    let (asc, gpg) = public_key_files(&pk)?;
    let (asc_path, gpg_path) = (dir.join(format!("{name}.asc")), dir.join(format!("{name}.gpg")));
    crate::store::atomic::write(&asc_path, asc.as_bytes())
        .with_context(|| format!("writing {}", asc_path.display()))?;
    crate::store::atomic::write(&gpg_path, &gpg).with_context(|| format!("writing {}", gpg_path.display()))?;
    use pgp::types::KeyDetails;
    let fp = pk.primary_key.fingerprint().to_string();
    cx.printer.data(&json!({"fingerprint": fp, "secretKey": sk_path, "asc": asc_path, "gpg": gpg_path}), || {
        format!(
            "apt key {fp}\n  secret: {}\n  public: {} (armored), {} (binary): give clients one as Signed-By\n",
            sk_path.display(),
            asc_path.display(),
            gpg_path.display()
        )
    });
    Ok(ExitStatus::Success)
}

fn password() -> Result<String> {
    password_from(PASSWORD_ENV)
}

fn password_from(var: &str) -> Result<String> {
    if let Ok(p) = std::env::var(var) {
        if p.is_empty() {
            bail!("{var} is empty: set a passphrase, or pass --no-password");
        }
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        bail!("a passphrase is needed: set {var}, run on a terminal, or pass --no-password");
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
