//! The layers of a configuration as figment providers: TOML text (from a file or not),
//! `LYNN_…` environment variables taken from any list, and values set by the program.

use std::ffi::OsString;
use std::path::PathBuf;

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Error, Metadata, Profile, Provider};

use super::{ConfigFileError, ENV_PREFIX, ENV_SEPARATOR};

/// TOML text; `path` names the file it was read from, for errors.
pub(super) struct TomlText {
    pub(super) text: String,
    pub(super) path: Option<PathBuf>,
}

impl Provider for TomlText {
    fn metadata(&self) -> Metadata {
        match &self.path {
            Some(path) => Metadata::from("TOML file", path.as_path()),
            None => Metadata::named("TOML text"),
        }
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        Toml::string(&self.text).data()
    }
}

/// The `LYNN_…` variables of an environment, as nested keys.
pub(super) struct EnvVars {
    dict: Dict,
}

/// What errors from the environment are attributed to.
pub(super) const ENV_NAME: &str = "environment variable";

impl EnvVars {
    /// Keeps the variables named `LYNN_…` (others are not lynn's) and nests their keys:
    /// `LYNN_CONNECTION__IDLE_TIMEOUT` is `connection.idle_timeout`.
    pub(super) fn new(vars: &[(OsString, OsString)]) -> Result<EnvVars, ConfigFileError> {
        let mut dict = Dict::new();
        for (name, value) in vars {
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(ENV_PREFIX)) else {
                continue;
            };
            let name = name.to_string_lossy();
            let refuse = |reason: &str| ConfigFileError {
                key: String::new(),
                reason: reason.into(),
                origin: Some(format!("{ENV_NAME} {name}")),
            };
            let path: Vec<String> = rest
                .split(ENV_SEPARATOR)
                .map(|k| k.to_ascii_lowercase())
                .collect();
            if path.iter().any(|k| k.is_empty() || k.contains('.')) {
                return Err(refuse(
                    "not a key: write `LYNN_` and the key path in capitals, nested keys \
                     separated by `__` (LYNN_CONNECTION__IDLE_TIMEOUT)",
                ));
            }
            let Some(value) = value.to_str() else {
                return Err(refuse("the value is not valid UTF-8"));
            };
            insert(&mut dict, &path, env_value(value));
        }
        Ok(EnvVars { dict })
    }
}

impl Provider for EnvVars {
    fn metadata(&self) -> Metadata {
        Metadata::named(ENV_NAME).interpolater(|_: &Profile, keys: &[&str]| env_name(keys))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// The variable that sets the key at `path`: `["connection", "idle_timeout"]` is
/// `LYNN_CONNECTION__IDLE_TIMEOUT`.
pub(super) fn env_name<K: AsRef<str>>(path: &[K]) -> String {
    let keys: Vec<String> = path
        .iter()
        .map(|k| k.as_ref().to_ascii_uppercase())
        .collect();
    format!("{ENV_PREFIX}{}", keys.join(ENV_SEPARATOR))
}

/// An environment variable's value: `true` and `false` are booleans, whole numbers are
/// integers, anything else (a duration, an address, `off`, an enum value) is a string.
fn env_value(text: &str) -> Value {
    let text = text.trim();
    match text {
        "true" => true.into(),
        "false" => false.into(),
        _ => {
            if let Ok(n) = text.parse::<u64>() {
                n.into()
            } else if let Ok(n) = text.parse::<i64>() {
                n.into()
            } else {
                text.into()
            }
        }
    }
}

/// Sets `path` in `dict`, making tables on the way (a value that is not a table where a
/// table is needed, `LYNN_RECONNECT=off` beside `LYNN_RECONNECT__SEED=1`, gives way).
pub(super) fn insert(dict: &mut Dict, path: &[String], value: Value) {
    match path {
        [] => {}
        [key] => {
            dict.insert(key.clone(), value);
        }
        [key, rest @ ..] => {
            let entry = dict
                .entry(key.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            if entry.as_dict().is_none() {
                *entry = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}

/// Values set by the program (a command-line flag), above every other layer.
pub(super) struct SetValues {
    pub(super) dict: Dict,
}

/// What errors about a set value are attributed to.
pub(super) const SET_NAME: &str = "value set by the program";

impl Provider for SetValues {
    fn metadata(&self) -> Metadata {
        Metadata::named(SET_NAME)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    #[test]
    fn nested_keys_and_typed_values() {
        let env = EnvVars::new(&vars(&[
            ("LYNN_ADDR", "127.0.0.1:1"),
            ("LYNN_CONNECTION__IDLE_TIMEOUT", "30s"),
            ("LYNN_CONNECTION__READ_CHUNK", "4096"),
            ("LYNN_SOCKET__NODELAY", "false"),
            ("PATH", "/bin"),
            ("lynn_lowercase_prefix", "is not lynn's"),
        ]))
        .unwrap();
        let d = &env.dict;
        assert_eq!(d.len(), 3, "{d:?}");
        assert_eq!(d["addr"].as_str(), Some("127.0.0.1:1"));
        let conn = d["connection"].as_dict().unwrap();
        assert_eq!(conn["idle_timeout"].as_str(), Some("30s"));
        assert_eq!(conn["read_chunk"].to_u128(), Some(4096));
        assert_eq!(
            d["socket"].as_dict().unwrap()["nodelay"].to_bool(),
            Some(false)
        );
        assert_eq!(
            env_name(&["connection", "idle_timeout"]),
            "LYNN_CONNECTION__IDLE_TIMEOUT"
        );
    }

    #[test]
    fn malformed_names_are_refused() {
        for name in ["LYNN_", "LYNN_CONNECTION____X", "LYNN_A.B"] {
            let e = EnvVars::new(&vars(&[(name, "1")])).err().unwrap();
            assert!(e.to_string().contains(name), "{e}");
        }
    }
}
