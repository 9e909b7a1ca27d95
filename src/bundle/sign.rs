//! Ed25519 signatures in minisign's format, so that `minisign -Vm manifest.json -p key.pub`
//! verifies a bundle with no airlock at hand.
//!
//! Key files, their passphrase encryption (scrypt) and verification come from the
//! `minisign` crate. Signing is done here with `ed25519-dalek`, because minisign's own
//! signer adds random noise to each signature and bundles must be byte-for-byte
//! reproducible: plain Ed25519 is deterministic. The signature is minisign's
//! "prehashed" form (`ED`): Ed25519 over BLAKE2b-512 of the file.

use std::fmt;
use std::io::{Cursor, IsTerminal};
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use blake2::{Blake2b512, Digest as _};
use ed25519_dalek::{Signer, SigningKey};

/// Environment variable holding the secret key's passphrase, for unattended exports.
pub const PASSWORD_ENV: &str = "AIRLOCK_KEY_PASSWORD";

/// A minisign key id: 8 bytes, shown as 16 upper-case hex digits (little-endian), as minisign does.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 8]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016X}", u64::from_le_bytes(self.0))
    }
}
impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for KeyId {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        let n = u64::from_str_radix(s, 16).map_err(|_| anyhow!("`{s}` is not a key id (16 hex digits)"))?;
        if s.len() != 16 {
            bail!("`{s}` is not a key id (16 hex digits)");
        }
        Ok(KeyId(n.to_le_bytes()))
    }
}

/// A public key, as found in a `minisign.pub`-style file.
#[derive(Clone)]
pub struct PublicKey {
    inner: minisign::PublicKey,
    /// The file's text, normalised to the two minisign lines.
    text: String,
}

impl PublicKey {
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim_start_matches('\u{feff}');
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let (comment, b64) = match (lines.next(), lines.next()) {
            (Some(c), Some(k)) if c.starts_with("untrusted comment:") => (c.to_string(), k.to_string()),
            (Some(k), None) => (String::new(), k.to_string()),
            _ => bail!("not a minisign public key (expected `untrusted comment: ...` and a base64 line)"),
        };
        let inner = minisign::PublicKey::from_base64(&b64).map_err(|e| anyhow!("not a minisign public key: {e}"))?;
        let mut pk = Self { inner, text: String::new() };
        let comment =
            if comment.is_empty() { format!("untrusted comment: minisign public key {}", pk.id()) } else { comment };
        pk.text = format!("{comment}\n{b64}\n");
        Ok(pk)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading public key {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("public key {}", path.display()))
    }

    pub fn id(&self) -> KeyId {
        let mut id = [0u8; 8];
        id.copy_from_slice(self.inner.keynum());
        KeyId(id)
    }

    pub fn base64(&self) -> String {
        self.inner.to_base64()
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The raw 32-byte Ed25519 public key (the last 32 of minisign's 42 key bytes).
    pub fn ed25519_bytes(&self) -> [u8; 32] {
        let raw = B64.decode(self.inner.to_base64()).expect("a parsed key is base64");
        raw[raw.len() - 32..].try_into().expect("32 bytes")
    }

    /// Check a plain Ed25519 signature over `msg` (no prehash), as DSSE envelopes carry.
    pub fn verify_ed25519(&self, msg: &[u8], sig: &[u8]) -> Result<()> {
        let key = ed25519_dalek::VerifyingKey::from_bytes(&self.ed25519_bytes())
            .map_err(|e| anyhow!("public key {}: {e}", self.id()))?;
        let sig = ed25519_dalek::Signature::from_slice(sig).map_err(|_| anyhow!("not an Ed25519 signature"))?;
        key.verify_strict(msg, &sig)
            .map_err(|_| anyhow!("the Ed25519 signature does not verify with key {}", self.id()))
    }

    /// Check a minisign signature over `msg`. Returns the trusted comment.
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> Result<String> {
        minisign::verify(&self.inner, &sig.inner, Cursor::new(msg), true, false, false)
            .map_err(|e| anyhow!("{}", e.to_string().to_lowercase()))?;
        sig.inner.trusted_comment().map_err(|e| anyhow!("{e}"))
    }
}

/// A parsed `.minisig` file.
pub struct Signature {
    inner: minisign::SignatureBox,
}

impl Signature {
    pub fn parse(text: &str) -> Result<Self> {
        let inner = minisign::SignatureBox::from_string(text).map_err(|e| anyhow!("not a minisign signature: {e}"))?;
        Ok(Self { inner })
    }

    pub fn key_id(&self) -> KeyId {
        let mut id = [0u8; 8];
        id.copy_from_slice(self.inner.keynum());
        KeyId(id)
    }
}

/// A secret key, decrypted and ready to sign.
pub struct SecretKey {
    signing: SigningKey,
    id: KeyId,
}

impl SecretKey {
    /// Read a minisign secret key file; a passphrase comes from `AIRLOCK_KEY_PASSWORD` or,
    /// on a terminal, from a prompt.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!("reading secret key {} (create one with `airlock key generate`, or pass --key)", path.display())
        })?;
        let raw = text
            .lines()
            .nth(1)
            .and_then(|l| B64.decode(l.trim()).ok())
            .filter(|b| b.len() == 158 && b.starts_with(b"Ed"))
            .ok_or_else(|| anyhow!("{} is not a minisign secret key", path.display()))?;
        let bytes = match &raw[2..4] {
            // Unencrypted (`minisign -G -W`, `airlock key generate --no-password`): minisign
            // leaves the checksum zero here, so the key is checked by its public half below.
            b"\0\0" => raw,
            b"Sc" => {
                let password = match std::env::var(PASSWORD_ENV) {
                    Ok(p) => Some(p),
                    Err(_) if std::io::stdin().is_terminal() => None,
                    Err(_) => bail!(
                        "secret key {} is passphrase-protected: set {PASSWORD_ENV} or run on a terminal",
                        path.display()
                    ),
                };
                let sk_box = minisign::SecretKeyBox::from_string(&text).map_err(|e| anyhow!("{e}"))?;
                minisign::SecretKey::from_box(sk_box, password)
                    .map_err(|e| anyhow!("secret key {}: {}", path.display(), e.to_string().to_lowercase()))?
                    .to_bytes()
            }
            _ => bail!("secret key {} uses an unknown key derivation", path.display()),
        };
        Self::from_bytes(&bytes).with_context(|| format!("secret key {}", path.display()))
    }

    fn from_bytes(b: &[u8]) -> Result<Self> {
        // Layout of minisign's secret key bytes: sig_alg(2) kdf_alg(2) chk_alg(2) salt(32)
        // opslimit(8) memlimit(8) keynum(8) sk(64 = seed || public key) chk(32).
        if b.len() != 158 {
            bail!("unexpected secret key length {}", b.len());
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&b[54..62]);
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&b[62..94]);
        let signing = SigningKey::from_bytes(&seed);
        if signing.verifying_key().as_bytes()[..] != b[94..126] {
            bail!("secret key is corrupt (its public half does not match)");
        }
        Ok(Self { signing, id: KeyId(id) })
    }

    #[cfg(test)]
    fn from_seed(seed: [u8; 32], id: [u8; 8]) -> Self {
        Self { signing: SigningKey::from_bytes(&seed), id: KeyId(id) }
    }

    pub fn id(&self) -> KeyId {
        self.id
    }

    /// A plain Ed25519 signature over `msg` (RFC 8032, no prehash): what a DSSE envelope
    /// carries over its PAE bytes. Deterministic, like every Ed25519 signature. It cannot
    /// pass for a minisign signature: minisign signs a 64-byte BLAKE2b digest, then the
    /// signature and a trusted comment, and PAE bytes start with `DSSEv1 ` and are longer.
    pub fn sign_ed25519(&self, msg: &[u8]) -> [u8; 64] {
        self.signing.sign(msg).to_bytes()
    }

    /// A `.minisig` file's text over `msg`: deterministic for a given key, message and comment.
    pub fn sign(&self, msg: &[u8], trusted_comment: &str) -> String {
        assert!(!trusted_comment.contains(['\n', '\r']), "trusted comments are one line");
        let prehash = Blake2b512::digest(msg);
        let sig = self.signing.sign(&prehash).to_bytes();
        let mut sig_line = Vec::with_capacity(74);
        sig_line.extend_from_slice(b"ED");
        sig_line.extend_from_slice(&self.id.0);
        sig_line.extend_from_slice(&sig);
        let mut global = Vec::with_capacity(64 + trusted_comment.len());
        global.extend_from_slice(&sig);
        global.extend_from_slice(trusted_comment.as_bytes());
        let global_sig = self.signing.sign(&global).to_bytes();
        format!(
            "untrusted comment: signature from airlock secret key {}\n{}\ntrusted comment: {trusted_comment}\n{}\n",
            self.id,
            B64.encode(&sig_line),
            B64.encode(global_sig)
        )
    }
}

/// Generate a key pair: returns (secret key file text, public key).
pub fn generate(password: Option<String>) -> Result<(String, PublicKey)> {
    let kp = match password {
        Some(p) => minisign::KeyPair::generate_encrypted_keypair(Some(p)),
        None => minisign::KeyPair::generate_unencrypted_keypair(),
    }
    .map_err(|e| anyhow!("generating a key pair: {e}"))?;
    let pk_box = kp.pk.to_box().map_err(|e| anyhow!("{e}"))?;
    let id = {
        let mut id = [0u8; 8];
        id.copy_from_slice(kp.pk.keynum());
        KeyId(id)
    };
    let sk_text = kp.sk.to_box(Some(&format!("airlock secret key {id}"))).map_err(|e| anyhow!("{e}"))?.into_string();
    let pk = PublicKey::parse(&pk_box.into_string())?;
    Ok((sk_text, pk))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    /// The test vector from minisign's own format, checked there with `minisign -V`.
    #[test]
    fn reproduces_minisign_vector() {
        let mut seed = [0u8; 32];
        for (i, b) in seed.iter_mut().enumerate() {
            *b = i as u8;
        }
        let sk = SecretKey::from_seed(seed, [1, 2, 3, 4, 5, 6, 7, 8]);
        let text = sk.sign(b"hello minisign\n", "timestamp:1700000000\tfile:msg.txt\thashed");
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(
            lines[1],
            "RUQBAgMEBQYHCCm7IPBhduc+N9X9io8w7n1RLXTNLNMM5ik72fpSCNWHvX81sqry/AT6+Q3H1th1zoEpddsfg8Kolw9ocIxuwwU="
        );
        assert_eq!(
            lines[3],
            "P5qreeYHl77Uk49+HXDG1NNnvXKF7hgZLlbLVzY28IOX8vq2i7lI5QDxL03z0fi8DtpgaK6AiS4BQxEg2rUJAw=="
        );
        let pk = PublicKey::parse(
            "untrusted comment: minisign public key 0807060504030201\nRWQBAgMEBQYHCAOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4\n",
        )
        .unwrap();
        assert_eq!(pk.id().to_string(), "0807060504030201");
        let sig = Signature::parse(&text).unwrap();
        assert_eq!(pk.verify(b"hello minisign\n", &sig).unwrap(), "timestamp:1700000000\tfile:msg.txt\thashed");
        assert!(pk.verify(b"hello minisign!", &sig).is_err());
    }

    #[test]
    fn generated_keys_round_trip() {
        let (sk_text, pk) = generate(None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, sk_text).unwrap();
        let sk = SecretKey::load(&p).unwrap();
        assert_eq!(sk.id(), pk.id());
        let sig = Signature::parse(&sk.sign(b"m", "c")).unwrap();
        assert_eq!(pk.verify(b"m", &sig).unwrap(), "c");
    }
}
