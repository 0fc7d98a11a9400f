//! Configuration files (feature `config`): a [`ServerConfig`] or a [`ClientConfig`] from a
//! TOML file and `LYNN_…` environment variables, checked before anything binds.
//!
//! ```no_run
//! use lynn_proto::ServerConfig;
//! use lynn_service::config;
//!
//! // config/server.toml, then the process's LYNN_… variables over it, then validate().
//! let server: ServerConfig = config::load("config/server.toml")?;
//!
//! // The same layers spelled out; a command-line flag goes on top with `set`.
//! let server: ServerConfig = config::ConfigLoader::new()
//!     .file("config/server.toml")
//!     .process_env()
//!     .set("addr", Some("127.0.0.1:9000")) // None (a flag not given) sets nothing
//!     .load()?;
//! # Ok::<(), config::ConfigFileError>(())
//! ```
//!
//! **Layers**, each over the one before: the defaults ([`ServerConfig::default`],
//! [`ClientConfig::default`]), the file, the environment, values [`set`](ConfigLoader::set)
//! by the program. Every key may be left out of every layer.
//!
//! **The file** is TOML with the Rust field names as keys; durations are strings such as
//! `"30s"`, `"250ms"`, `"3m"`, and an optional setting is turned off with `"off"`
//! (`idle_timeout = "off"`, `reconnect = "off"`); an unknown key is an error. The lynn-proto
//! crate docs list the conventions; `config/server.toml` and `config/client.toml` in the
//! repository show every key with its default.
//!
//! **Environment variables** are named `LYNN_` and the key path in capitals, nested keys
//! separated by `__` ([`ENV_PREFIX`], [`ENV_SEPARATOR`]): `LYNN_ADDR=0.0.0.0:9000`,
//! `LYNN_CONNECTION__IDLE_TIMEOUT=30s`, `LYNN_ADMISSION__RATE__PER_SECOND=200`. A value
//! `true` or `false` is a boolean, a whole number an integer, anything else a string. Every
//! `LYNN_` variable must name a key: an unknown one is refused like an unknown key in the
//! file. [`ConfigLoader::env`] takes the variables from any list instead of the process
//! (tests need not touch the process environment).
//!
//! **Errors** ([`ConfigFileError`]) name the key, where its value came from (the file, the
//! variable) and what is wrong: an unknown key, a wrong type, a bad duration, or a value
//! `validate()` refuses (`read_chunk = 0`, a zero duration).

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use figment::error::Kind;
use figment::value::{Dict, Value};
use figment::{Figment, Metadata};
use lynn_proto::{ClientConfig, ServerConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;

mod check;
mod sources;

use sources::{ENV_NAME, EnvVars, SET_NAME, SetValues, TomlText};

/// The prefix of the environment variables the loader reads.
pub const ENV_PREFIX: &str = "LYNN_";
/// What separates nested keys in an environment variable's name
/// (`LYNN_CONNECTION__IDLE_TIMEOUT` is `connection.idle_timeout`).
pub const ENV_SEPARATOR: &str = "__";

/// A configuration a file can hold: [`ServerConfig`] or [`ClientConfig`].
pub trait FileConfig: Serialize + DeserializeOwned + sealed::Sealed {}

impl FileConfig for ServerConfig {}
impl FileConfig for ClientConfig {}

mod sealed {
    use super::check::{self, Problem};

    /// Keeps [`FileConfig`](super::FileConfig) to the two configurations, and checks them.
    pub trait Sealed {
        /// `validate()`, with the problem's key path.
        fn check(&self) -> Result<(), Problem>;
    }

    impl Sealed for lynn_proto::ServerConfig {
        fn check(&self) -> Result<(), Problem> {
            check::server(self)
        }
    }

    impl Sealed for lynn_proto::ClientConfig {
        fn check(&self) -> Result<(), Problem> {
            check::client(self)
        }
    }
}

/// Loads a configuration from the TOML file at `path` with the process's `LYNN_…`
/// environment variables over it, and validates it. A missing file is an error.
pub fn load<T: FileConfig>(path: impl AsRef<Path>) -> Result<T, ConfigFileError> {
    ConfigLoader::new().file(path.as_ref()).process_env().load()
}

/// Writes a configuration as TOML, every key included (`None` as `"off"`); loading the
/// text gives the same configuration back.
pub fn to_toml<T: FileConfig>(config: &T) -> Result<String, ConfigFileError> {
    toml::to_string(config).map_err(|e| ConfigFileError {
        key: String::new(),
        reason: e.to_string(),
        origin: None,
    })
}

/// Where a configuration comes from; [`load`](Self::load) reads the layers in order, each
/// over the one before: the defaults, a TOML file or text, environment variables, values
/// set by the program. Nothing is read until `load`, except the process environment,
/// which [`process_env`](Self::process_env) takes when called.
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct ConfigLoader {
    toml: Option<Toml>,
    env: Vec<(OsString, OsString)>,
    set: Vec<(String, Result<Value, String>)>,
}

#[derive(Clone, Debug)]
enum Toml {
    File(PathBuf),
    Text(String),
}

impl ConfigLoader {
    /// No file, no environment: loads the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the TOML file at `path` (it must exist), replacing any file or text given
    /// before.
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.toml = Some(Toml::File(path.into()));
        self
    }

    /// Reads this TOML text instead of a file.
    pub fn toml(mut self, text: impl Into<String>) -> Self {
        self.toml = Some(Toml::Text(text.into()));
        self
    }

    /// Adds environment variables from a list (`(name, value)` pairs); those named
    /// `LYNN_…` set keys, the others are ignored (and not kept). A later variable of the
    /// same name wins.
    pub fn env<K, V>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<OsString>,
        V: Into<OsString>,
    {
        let ours = |name: &OsString| name.to_str().is_some_and(|n| n.starts_with(ENV_PREFIX));
        let vars = vars.into_iter().map(|(k, v)| (k.into(), v.into()));
        self.env.extend(vars.filter(|(k, _)| ours(k)));
        self
    }

    /// Adds the process's environment variables, as they are now.
    pub fn process_env(self) -> Self {
        self.env(std::env::vars_os())
    }

    /// Sets the key at the dotted `key` path (`"addr"`, `"connection.idle_timeout"`) above
    /// the file and the environment: for command-line flags. The value is written as in
    /// the file (`"30s"` for a duration, `"off"` to turn a setting off); `None` sets
    /// nothing, so a flag that was not given can be passed as it is.
    pub fn set(mut self, key: &str, value: impl Serialize) -> Self {
        let value = Value::serialize(value).map_err(|e| e.to_string());
        if !matches!(value, Ok(Value::Empty(..))) {
            self.set.push((key.to_string(), value));
        }
        self
    }

    /// Reads the layers into a configuration and validates it.
    pub fn load<T: FileConfig>(&self) -> Result<T, ConfigFileError> {
        let mut figment = Figment::new();
        match &self.toml {
            Some(Toml::File(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigFileError {
                    key: String::new(),
                    reason: format!("cannot read the file: {e}"),
                    origin: Some(path.display().to_string()),
                })?;
                let path = Some(path.clone());
                figment = figment.merge(TomlText { text, path });
            }
            Some(Toml::Text(text)) => {
                let text = text.clone();
                figment = figment.merge(TomlText { text, path: None });
            }
            None => {}
        }
        figment = figment.merge(EnvVars::new(&self.env)?);
        let mut dict = Dict::new();
        for (key, value) in &self.set {
            let value = value.clone().map_err(|reason| ConfigFileError {
                key: key.clone(),
                reason,
                origin: Some(SET_NAME.into()),
            })?;
            let path: Vec<String> = key.split('.').map(str::to_string).collect();
            sources::insert(&mut dict, &path, value);
        }
        figment = figment.merge(SetValues { dict });

        let config: T = figment.extract().map_err(ConfigFileError::from_figment)?;
        config.check().map_err(|(key, reason)| ConfigFileError {
            origin: figment
                .find_metadata(&key)
                .map(|md| describe(md, &key.split('.').collect::<Vec<_>>())),
            key,
            reason,
        })?;
        Ok(config)
    }
}

/// A configuration that cannot be loaded: a file that cannot be read or parsed, an unknown
/// key, a value of the wrong type, or one that `validate()` refuses.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigFileError {
    /// The key, as a dotted path (`connection.read_chunk`); empty when the error is about a
    /// whole file or variable (it cannot be read, it is not TOML).
    pub key: String,
    /// What is wrong.
    pub reason: String,
    /// Where the value came from: the file's path, `environment variable LYNN_…`, `value
    /// set by the program`; `None` for a default value.
    pub origin: Option<String>,
}

impl ConfigFileError {
    /// The first of figment's errors, which name the key path and its provider.
    fn from_figment(error: figment::Error) -> ConfigFileError {
        let Some(e) = error.into_iter().next() else {
            return ConfigFileError {
                key: String::new(),
                reason: "unknown error".into(),
                origin: None,
            };
        };
        let path: Vec<&str> = e.path.iter().map(String::as_str).collect();
        ConfigFileError {
            key: e.path.join("."),
            reason: reason(&e.kind),
            origin: e.metadata.as_ref().map(|md| describe(md, &path)),
        }
    }
}

/// What is wrong, in a config file's terms (figment's words for the other kinds).
fn reason(kind: &Kind) -> String {
    let one_of = |names: &[&str]| {
        let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        names.join(", ")
    };
    match kind {
        Kind::UnknownField(_, expected) => {
            format!("unknown key; the keys here are {}", one_of(expected))
        }
        Kind::UnknownVariant(found, expected) => {
            format!(
                "unknown value `{found}`; expected one of {}",
                one_of(expected)
            )
        }
        kind => kind.to_string(),
    }
}

/// Names a provider for an error: the file's path, or the variable that set `path`.
fn describe(md: &Metadata, path: &[&str]) -> String {
    if let Some(file) = md.source.as_ref().and_then(|s| s.file_path()) {
        return file.display().to_string();
    }
    if md.name == ENV_NAME {
        return format!("{ENV_NAME} {}", sources::env_name(path));
    }
    md.name.to_string()
}

impl fmt::Display for ConfigFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid configuration")?;
        if !self.key.is_empty() {
            write!(f, ": `{}`", self.key)?;
        }
        if let Some(origin) = &self.origin {
            write!(f, " in {origin}")?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for ConfigFileError {}
