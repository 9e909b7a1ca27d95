//! OpenPGP for apt, with rPGP: checking an upstream's InRelease (or Release +
//! Release.gpg) against the keyring the spec names, and signing the site's own
//! repository with its v4 Ed25519 key (gpgv, which apt runs, rejects v6 keys).
//!
//! rPGP checks signatures but applies no policy, so this module does: a signature counts
//! only if made with SHA-256 or stronger by a key (or subkey) that may sign, is not
//! revoked and has not expired.

use std::io::BufReader;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, Deserializable, DetachedSignature, KeyType, SecretKeyParamsBuilder,
    SignedPublicKey, SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{Signature, SignatureType};
use pgp::ser::Serialize;
use pgp::types::{KeyDetails, Password};

/// The public keys an upstream's Release must be signed by.
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
    what: String,
}

/// Why a key cannot vouch for anything now, if it cannot.
fn unusable(sigs: &[&Signature], created: u32, revoked: bool, now: u64) -> Option<&'static str> {
    if revoked {
        return Some("revoked");
    }
    let flags_deny = sigs.iter().any(|s| s.key_flags().sign()) || sigs.iter().all(|s| !has_key_flags(s));
    if !flags_deny {
        return Some("not allowed to sign (key flags)");
    }
    let expiry =
        sigs.iter().filter_map(|s| s.key_expiration_time()).map(|d| std::time::Duration::from(d).as_secs()).max();
    if let Some(e) = expiry
        && e > 0
        && u64::from(created) + e < now
    {
        return Some("expired");
    }
    None
}

fn has_key_flags(s: &Signature) -> bool {
    let f = s.key_flags();
    f.sign() || f.certify() || f.encrypt_comms() || f.encrypt_storage() || f.authentication()
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Keyring {
    /// Read a keyring file: armored (`.asc`) or binary (`.gpg`), one key or many.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading keyring {}", path.display()))?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    pub fn from_bytes(bytes: &[u8], what: &str) -> Result<Self> {
        let armored = bytes.windows(10).take(4096).any(|w| w == b"-----BEGIN");
        let parsed: Vec<pgp::errors::Result<SignedPublicKey>> = if armored {
            let (it, _) = SignedPublicKey::from_armor_many(BufReader::new(bytes))
                .map_err(|e| anyhow!("keyring {what}: not an OpenPGP public key block: {e}"))?;
            it.collect()
        } else {
            SignedPublicKey::from_bytes_many(BufReader::new(bytes))
                .map_err(|e| anyhow!("keyring {what}: not an OpenPGP keyring: {e}"))?
                .collect()
        };
        let keys =
            parsed.into_iter().collect::<pgp::errors::Result<Vec<_>>>().map_err(|e| anyhow!("keyring {what}: {e}"))?;
        if keys.is_empty() {
            bail!("keyring {what} holds no public key");
        }
        Ok(Self { keys, what: what.to_string() })
    }

    /// Check one signature over `data`: Ok(fingerprint of the signing key), or why not.
    fn check(&self, sig: &Signature, data: &[u8]) -> std::result::Result<String, String> {
        match sig.hash_alg() {
            Some(HashAlgorithm::Md5 | HashAlgorithm::Sha1 | HashAlgorithm::Ripemd160) | None => {
                return Err("made with a weak digest (MD5/SHA-1)".into());
            }
            _ => {}
        }
        let now = now();
        let mut why = None;
        for k in &self.keys {
            let revoked = !k.details.revocation_signatures.is_empty();
            let self_sigs: Vec<&Signature> = k
                .details
                .users
                .iter()
                .flat_map(|u| u.signatures.iter())
                .chain(k.details.direct_signatures.iter())
                .collect();
            if sig.verify(&k.primary_key, data).is_ok() {
                match unusable(&self_sigs, k.primary_key.created_at().as_secs(), revoked, now) {
                    None => return Ok(k.primary_key.fingerprint().to_string()),
                    Some(w) => why = Some(format!("by key {}, which is {w}", k.primary_key.fingerprint())),
                }
            }
            for sub in &k.public_subkeys {
                if sig.verify(&sub.key, data).is_err() {
                    continue;
                }
                let sub_revoked =
                    revoked || sub.signatures.iter().any(|s| s.typ() == Some(SignatureType::SubkeyRevocation));
                let binding: Vec<&Signature> =
                    sub.signatures.iter().filter(|s| s.typ() == Some(SignatureType::SubkeyBinding)).collect();
                let flags_ok = binding.iter().any(|s| s.key_flags().sign());
                match unusable(&binding, sub.key.created_at().as_secs(), sub_revoked, now) {
                    None if flags_ok => return Ok(sub.key.fingerprint().to_string()),
                    None => why = Some(format!("by subkey {}, which may not sign", sub.key.fingerprint())),
                    Some(w) => why = Some(format!("by subkey {}, which is {w}", sub.key.fingerprint())),
                }
            }
        }
        Err(why.unwrap_or_else(|| {
            let issuers: Vec<String> = sig
                .issuer_fingerprint()
                .iter()
                .map(|f| f.to_string())
                .chain(sig.issuer_key_id().iter().map(|k| format!("{k:?}")))
                .collect();
            format!(
                "not by any key in {} (signed by {})",
                self.what,
                if issuers.is_empty() { "an unnamed key".into() } else { issuers.join(", ") }
            )
        }))
    }

    /// Verify a clearsigned message (InRelease); returns the signed text with `\n` line
    /// endings and the fingerprint that signed it.
    pub fn verify_cleartext(&self, armored: &str) -> Result<(String, String)> {
        let (msg, _) =
            CleartextSignedMessage::from_string(armored).map_err(|e| anyhow!("not a clearsigned message: {e}"))?;
        let text = msg.signed_text();
        let mut why = Vec::new();
        for sig in msg.signatures() {
            match self.check(sig, text.as_bytes()) {
                Ok(fp) => return Ok((text.replace("\r\n", "\n"), fp)),
                Err(w) => why.push(w),
            }
        }
        if why.is_empty() {
            bail!("it carries no signature");
        }
        bail!("no good signature: {}", why.join("; "))
    }

    /// Verify an armored detached signature (Release.gpg) over `data`.
    pub fn verify_detached(&self, data: &[u8], armored_sig: &[u8]) -> Result<String> {
        let (it, _) = DetachedSignature::from_armor_many(BufReader::new(armored_sig))
            .map_err(|e| anyhow!("not an armored OpenPGP signature: {e}"))?;
        let mut why = Vec::new();
        for sig in it {
            let sig = sig.map_err(|e| anyhow!("unreadable signature: {e}"))?;
            match self.check(&sig.signature, data) {
                Ok(fp) => return Ok(fp),
                Err(w) => why.push(w),
            }
        }
        if why.is_empty() {
            bail!("it carries no signature");
        }
        bail!("no good signature: {}", why.join("; "))
    }
}

/// The site's apt signing key.
pub struct SiteKey {
    secret: SignedSecretKey,
    password: Password,
}

/// The environment variable that holds the apt key's passphrase.
pub const APT_PASSWORD_ENV: &str = "AIRLOCK_APT_KEY_PASSWORD";

impl SiteKey {
    /// A new v4 Ed25519 key that certifies and signs; returns it armored (encrypted with
    /// `passphrase` when given).
    pub fn generate(user_id: &str, passphrase: Option<String>) -> Result<String> {
        let mut params = SecretKeyParamsBuilder::default();
        params
            .key_type(KeyType::Ed25519Legacy)
            .can_certify(true)
            .can_sign(true)
            .primary_user_id(user_id.into())
            .passphrase(passphrase);
        let params = params.build().map_err(|e| anyhow!("apt key parameters: {e}"))?;
        let key = params.generate(rand::thread_rng()).map_err(|e| anyhow!("generating the apt key: {e}"))?;
        key.to_armored_string(ArmorOptions::default()).map_err(|e| anyhow!("armoring the apt key: {e}"))
    }

    /// Load an armored secret key; `passphrase` unlocks it if it is protected.
    pub fn load(path: &Path, passphrase: Option<String>) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading apt signing key {}", path.display()))?;
        let (secret, _) = SignedSecretKey::from_string(&text)
            .map_err(|e| anyhow!("apt signing key {}: not an armored OpenPGP secret key: {e}", path.display()))?;
        let encrypted = secret.primary_key.secret_params().is_encrypted();
        if encrypted && passphrase.is_none() {
            bail!("apt signing key {} is passphrase-protected: set {APT_PASSWORD_ENV}", path.display());
        }
        let password = passphrase.map_or_else(Password::empty, Password::from);
        let key = Self { secret, password };
        key.clearsign("probe\n")
            .map_err(|e| anyhow!("apt signing key {}: {e:#} (wrong passphrase?)", path.display()))?;
        Ok(key)
    }

    /// The public half of an armored secret key file (no passphrase needed).
    pub fn load_public(path: &Path) -> Result<SignedPublicKey> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading apt signing key {}", path.display()))?;
        let (secret, _) = SignedSecretKey::from_string(&text)
            .map_err(|e| anyhow!("apt signing key {}: not an armored OpenPGP secret key: {e}", path.display()))?;
        Ok(secret.to_public_key())
    }

    pub fn public(&self) -> SignedPublicKey {
        self.secret.to_public_key()
    }

    pub fn fingerprint(&self) -> String {
        self.secret.primary_key.fingerprint().to_string()
    }

    /// `InRelease`: the text clearsigned.
    pub fn clearsign(&self, text: &str) -> Result<String> {
        let msg = CleartextSignedMessage::sign(rand::thread_rng(), text, &self.secret.primary_key, &self.password)
            .map_err(|e| anyhow!("clearsigning: {e}"))?;
        msg.to_armored_string(ArmorOptions::default()).map_err(|e| anyhow!("armoring: {e}"))
    }

    /// `Release.gpg`: an armored detached signature over `data`.
    pub fn detach_sign(&self, data: &[u8]) -> Result<String> {
        let sig = DetachedSignature::sign_binary_data(
            rand::thread_rng(),
            &self.secret.primary_key,
            &self.password,
            HashAlgorithm::Sha512,
            data,
        )
        .map_err(|e| anyhow!("signing: {e}"))?;
        sig.to_armored_string(ArmorOptions::default()).map_err(|e| anyhow!("armoring: {e}"))
    }
}

/// A public key as apt's `Signed-By` takes it: armored (`.asc`) and binary (`.gpg`).
pub fn public_key_files(pk: &SignedPublicKey) -> Result<(String, Vec<u8>)> {
    let asc = pk.to_armored_string(ArmorOptions::default()).map_err(|e| anyhow!("armoring the public key: {e}"))?;
    let bin = pk.to_bytes().map_err(|e| anyhow!("serializing the public key: {e}"))?;
    Ok((asc, bin))
}
