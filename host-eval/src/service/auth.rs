//! Tenants (hospitals) and their bearer tokens.
//!
//! The tenants file holds only SHA-256 hashes of the tokens, so a copy of it (a backup, a
//! Kubernetes secret read by the wrong pod) lets nobody call the API. Tokens are 32 random
//! bytes from the OS, hex: their entropy makes a plain hash sufficient (no password stretching
//! needed), and lookups compare hashes, not tokens.
//!
//! ```json
//! { "format": "clifhe-tenants/1", "tenants": [ { "name": "hospital-a", "token_sha256": "..." } ] }
//! ```

use crate::cli::keyset::sha256_hex;
use crate::cli::CliError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

pub const FORMAT: &str = "clifhe-tenants/1";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TenantEntry {
    pub name: String,
    pub token_sha256: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TenantsFile {
    pub format: String,
    pub tenants: Vec<TenantEntry>,
}

/// Tenant names: they appear in blob names and logs.
pub fn valid_tenant(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Token hash -> tenant name.
#[derive(Clone, Debug, Default)]
pub struct Tenants {
    by_hash: HashMap<String, String>,
}

impl Tenants {
    pub fn load(path: &Path) -> Result<Self, CliError> {
        let f = read(path)?;
        Ok(Self {
            by_hash: f.tenants.into_iter().map(|t| (t.token_sha256, t.name)).collect(),
        })
    }

    /// The tenant a bearer token belongs to.
    pub fn authenticate(&self, token: &str) -> Option<&str> {
        self.by_hash.get(&sha256_hex(token.trim().as_bytes())).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

fn read(path: &Path) -> Result<TenantsFile, CliError> {
    let bytes = crate::cli::fsio::read(path)?;
    let f: TenantsFile = serde_json::from_slice(&bytes).map_err(|e| CliError::corrupt(path, "tenants file", e))?;
    if f.format != FORMAT {
        return Err(CliError::corrupt(
            path,
            "tenants file",
            format!("format {}, expected {FORMAT}", f.format),
        ));
    }
    if let Some(t) = f
        .tenants
        .iter()
        .find(|t| !valid_tenant(&t.name) || !clifhe_std::protocol::bundle::is_digest(&t.token_sha256))
    {
        return Err(CliError::corrupt(
            path,
            "tenants file",
            format!("bad entry for tenant {:?}", t.name),
        ));
    }
    Ok(f)
}

/// `host-eval tenant add NAME --tenants FILE`: adds a tenant (creating the file) and returns
/// its new token, which is shown once and stored nowhere in clear.
pub fn add_tenant(path: &Path, name: &str) -> Result<String, CliError> {
    if !valid_tenant(name) {
        return Err(CliError::bad_input(
            name,
            "tenant names are 1 to 64 characters of a-z, 0-9, '-' and '_'",
        ));
    }
    let mut f = if path.exists() {
        read(path)?
    } else {
        TenantsFile {
            format: FORMAT.into(),
            tenants: Vec::new(),
        }
    };
    if f.tenants.iter().any(|t| t.name == name) {
        return Err(CliError::bad_input(name, "a tenant of that name exists"));
    }
    let token = random_token()?;
    f.tenants.push(TenantEntry {
        name: name.into(),
        token_sha256: sha256_hex(token.as_bytes()),
    });
    let mut json = serde_json::to_vec_pretty(&f).map_err(|e| CliError::bad_input("tenants file", e))?;
    json.push(b'\n');
    crate::cli::fsio::write_atomic(path, &json)?;
    Ok(token)
}

/// 32 bytes from the OS generator, hex.
pub fn random_token() -> Result<String, CliError> {
    use rand_core::RngCore;
    let mut b = [0u8; 32];
    rand_core::OsRng.try_fill_bytes(&mut b).map_err(|e| {
        CliError::io(
            "the operating system's random generator",
            "read",
            std::io::Error::other(e.to_string()),
        )
    })?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_authenticate_only_their_tenant() {
        let dir = std::env::temp_dir().join(format!("clifhe-tenants-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tenants.json");
        let _ = std::fs::remove_file(&path);
        let a = add_tenant(&path, "hospital-a").unwrap();
        let b = add_tenant(&path, "hospital-b").unwrap();
        assert_ne!(a, b);
        assert!(add_tenant(&path, "hospital-a").is_err());
        assert!(add_tenant(&path, "Bad Name").is_err());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&a) && !text.contains(&b), "tokens stored in clear");
        let t = Tenants::load(&path).unwrap();
        assert_eq!(t.authenticate(&a), Some("hospital-a"));
        assert_eq!(t.authenticate(&b), Some("hospital-b"));
        assert_eq!(t.authenticate("nope"), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
