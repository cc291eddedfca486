//! Secrets: tokens are 256 random bits shown once, stored only as SHA-256
//! hashes and compared in constant time. A fast hash is enough because the
//! token itself is random and long, not a password a person chose.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use switchboard_protocol::Token;

/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;

/// A fresh token, as 64 hex digits.
pub fn generate() -> Result<Token, getrandom::Error> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes)?;
    Ok(Token::new(hex::encode(bytes)))
}

/// What the database keeps instead of the token.
pub fn hash(token: &Token) -> Vec<u8> {
    Sha256::digest(token.expose().as_bytes()).to_vec()
}

/// Whether `token` is the one `stored_hash` was made from.
pub fn verify(token: &Token, stored_hash: &[u8]) -> bool {
    hash(token).ct_eq(stored_hash).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_verify_only_themselves() {
        let a = generate().expect("random");
        let b = generate().expect("random");
        assert_eq!(a.expose().len(), 64);
        assert_ne!(a, b);
        let stored = hash(&a);
        assert!(verify(&a, &stored));
        assert!(!verify(&b, &stored));
        assert!(!verify(&Token::new(""), &stored));
        assert!(!verify(&a, &stored[..16]), "a short hash never matches");
    }
}
