//! `validate()` of a loaded configuration, with each problem named by its key path in the
//! file (`connection.read_chunk`, `admission.rate.burst`), not only by its field name.

use lynn_proto::admission::{Admission, AdmissionConfigError};
use lynn_proto::reconnect::{Reconnect, ReconnectConfigError};
use lynn_proto::{ClientConfig, ConfigError, ConnectionConfig, ServerConfig};

/// A problem: the key it is about and what is wrong.
pub(super) type Problem = (String, String);

/// The first problem of a server's configuration, if any.
pub(super) fn server(config: &ServerConfig) -> Result<(), Problem> {
    connection(&config.connection)?;
    if let Err(e) = Admission::new(config.admission.clone()) {
        let key = match &e {
            AdmissionConfigError::ZeroLimit { field } => format!("admission.{field}"),
            AdmissionConfigError::ZeroRate { field } => format!("admission.{field}.per_second"),
            AdmissionConfigError::ZeroBurst { field } => format!("admission.{field}.burst"),
            _ => "admission".into(),
        };
        return Err((key, e.to_string()));
    }
    config.validate().map_err(|e| match e.field {
        "max_in_flight" => ("connection.max_in_flight".into(), e.problem),
        _ => top_level(e),
    })
}

/// The first problem of a client's configuration, if any.
pub(super) fn client(config: &ClientConfig) -> Result<(), Problem> {
    connection(&config.connection)?;
    if let Some(policy) = &config.reconnect
        && let Err(e) = Reconnect::new(policy.clone())
    {
        let field = match &e {
            ReconnectConfigError::ZeroInitialDelay
            | ReconnectConfigError::InitialAboveMax { .. } => "initial_delay",
            ReconnectConfigError::MaxDelayTooLarge { .. } => "max_delay",
            ReconnectConfigError::ZeroMultiplier => "multiplier",
            ReconnectConfigError::JitterOutOfRange { .. } => "jitter_percent",
            ReconnectConfigError::ZeroMaxAttempts => "max_attempts",
            _ => "",
        };
        let key = match field {
            "" => "reconnect".to_string(),
            field => format!("reconnect.{field}"),
        };
        return Err((key, in_file_terms(e.to_string())));
    }
    config.validate().map_err(top_level)
}

/// The `[connection]` table's problems, under `connection.`.
fn connection(config: &ConnectionConfig) -> Result<(), Problem> {
    config.validate().map_err(|e| {
        let key = match e.field {
            "linger" => "connection.linger.timeout".to_string(),
            field => format!("connection.{field}"),
        };
        (key, in_file_terms(e.problem))
    })
}

/// A problem `validate()` names by a top-level key.
fn top_level(e: ConfigError) -> Problem {
    (e.field.to_string(), in_file_terms(e.problem))
}

/// lynn-proto's messages say `None` where a file says `"off"`.
fn in_file_terms(problem: String) -> String {
    problem.replace("use None", "use \"off\"")
}
