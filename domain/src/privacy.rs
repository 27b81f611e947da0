//! Sealing personal data in events (DESIGN.md §4 "Privacy"): XChaCha20-Poly1305 with a per-role
//! 32-byte data key, the role id as associated data. Keys live in PostgreSQL, never in events;
//! destroying a key makes every sealed text of that role unreadable while every hash chain
//! still verifies (hashes cover the sealed bytes).
//!
//! Pure: the caller supplies the key and a fresh random nonce.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload as AeadPayload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::DomainError;

pub const KEY_BYTES: usize = 32;
pub const NONCE_BYTES: usize = 24;
const ALG: &str = "xchacha20poly1305";

/// A sealed text as it appears in an event payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// Always `xchacha20poly1305`.
    pub alg: String,
    /// Whose key sealed it (the role id, also the associated data).
    pub kid: Uuid,
    /// Base64 (standard, padded) nonce, 24 bytes.
    pub nonce: String,
    /// Base64 ciphertext with the 16-byte tag.
    pub ct: String,
}

/// Seal `plaintext` for role `kid`.
pub fn seal(
    key: &[u8; KEY_BYTES],
    nonce: &[u8; NONCE_BYTES],
    kid: Uuid,
    plaintext: &str,
) -> Result<Sealed, DomainError> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let ct = cipher
        .encrypt(
            XNonce::from_slice(nonce),
            AeadPayload {
                msg: plaintext.as_bytes(),
                aad: kid.as_bytes(),
            },
        )
        .map_err(|_| DomainError::validation("text", "could not be sealed"))?;
    Ok(Sealed {
        alg: ALG.to_owned(),
        kid,
        nonce: STANDARD.encode(nonce),
        ct: STANDARD.encode(ct),
    })
}

/// Open a sealed text with its role's key. Fails if the key is wrong, or the text was altered.
pub fn open(key: &[u8; KEY_BYTES], sealed: &Sealed) -> Result<String, DomainError> {
    let bad = || DomainError::validation("sealed", "cannot be opened with this key");
    if sealed.alg != ALG {
        return Err(bad());
    }
    let nonce = STANDARD.decode(&sealed.nonce).map_err(|_| bad())?;
    if nonce.len() != NONCE_BYTES {
        return Err(bad());
    }
    let ct = STANDARD.decode(&sealed.ct).map_err(|_| bad())?;
    let cipher = XChaCha20Poly1305::new(key.into());
    let plain = cipher
        .decrypt(
            XNonce::from_slice(&nonce),
            AeadPayload {
                msg: &ct,
                aad: sealed.kid.as_bytes(),
            },
        )
        .map_err(|_| bad())?;
    String::from_utf8(plain).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_text_opens_only_with_its_key_and_owner() {
        let key = [7u8; 32];
        let kid = Uuid::from_u128(1);
        let s = seal(&key, &[1u8; 24], kid, "Grüße an alle").unwrap();
        assert!(!s.ct.contains("Gr"));
        assert_eq!(open(&key, &s).unwrap(), "Grüße an alle");
        assert!(open(&[8u8; 32], &s).is_err(), "another key");
        let moved = Sealed {
            kid: Uuid::from_u128(2),
            ..s.clone()
        };
        assert!(open(&key, &moved).is_err(), "bound to its owner");
        let mut tampered = s;
        tampered.ct.replace_range(
            0..1,
            if tampered.ct.starts_with('A') {
                "B"
            } else {
                "A"
            },
        );
        assert!(open(&key, &tampered).is_err());
    }
}
