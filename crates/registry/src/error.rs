//! Errors as Confluent Schema Registry answers them: an HTTP status and a
//! body `{"error_code": N, "message": "..."}`, where N is the status or a
//! five-digit refinement of it.

/// A failed registry request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    #[error("Version {0} not found.")]
    VersionNotFound(String),
    /// The id, where Confluent names it.
    #[error("{}", match .0 { Some(id) => format!("Schema {id} not found"), None => "Schema not found".to_string() })]
    SchemaNotFound(Option<i32>),
    #[error("Subject '{0}' was soft deleted.Set permanent=true to delete permanently")]
    SubjectSoftDeleted(String),
    #[error("Subject '{0}' was not deleted first before being permanently deleted")]
    SubjectNotSoftDeleted(String),
    #[error("Subject '{subject}' Version {version} was soft deleted.Set permanent=true to delete permanently")]
    VersionSoftDeleted { subject: String, version: i32 },
    #[error("Subject '{subject}' Version {version} was not deleted first before being permanently deleted")]
    VersionNotSoftDeleted { subject: String, version: i32 },
    #[error(
        "One or more references exist to the schema {{magic=1,keytype=SCHEMA,subject={subject},version={version}}}."
    )]
    ReferenceExists { subject: String, version: i32 },
    #[error("{0}")]
    Incompatible(String),
    #[error("Invalid schema {0}")]
    InvalidSchema(String),
    #[error("The specified version '{0}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"")]
    InvalidVersion(String),
    #[error("Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive")]
    InvalidCompatibilityLevel,
    #[error("Invalid mode. Valid values are READWRITE, READONLY, READONLY_OVERRIDE, and IMPORT")]
    InvalidMode,
    #[error("Subject '{0}' does not have subject-level compatibility configured")]
    SubjectCompatibilityNotConfigured(String),
    #[error("Subject '{0}' does not have subject-level mode configured")]
    SubjectModeNotConfigured(String),
    #[error("The specified subject '{0}' is not valid.")]
    InvalidSubject(String),
    #[error("{0}")]
    OperationNotPermitted(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("Error in the backend data store - {0}")]
    Store(String),
    #[error("HTTP 404 Not Found")]
    NotFound,
}

impl RegistryError {
    /// Confluent's `error_code`.
    pub fn code(&self) -> u32 {
        match self {
            RegistryError::SubjectNotFound(_) => 40401,
            RegistryError::VersionNotFound(_) => 40402,
            RegistryError::SchemaNotFound(_) => 40403,
            RegistryError::SubjectSoftDeleted(_) => 40404,
            RegistryError::SubjectNotSoftDeleted(_) => 40405,
            RegistryError::VersionSoftDeleted { .. } => 40406,
            RegistryError::VersionNotSoftDeleted { .. } => 40407,
            RegistryError::ReferenceExists { .. } => 42206,
            RegistryError::Incompatible(_) => 409,
            RegistryError::InvalidSchema(_) => 42201,
            RegistryError::InvalidVersion(_) => 42202,
            RegistryError::InvalidCompatibilityLevel => 42203,
            RegistryError::InvalidMode => 42204,
            RegistryError::SubjectCompatibilityNotConfigured(_) => 40408,
            RegistryError::SubjectModeNotConfigured(_) => 40409,
            RegistryError::InvalidSubject(_) => 42208,
            RegistryError::OperationNotPermitted(_) => 42205,
            RegistryError::InvalidRequest(_) => 400,
            RegistryError::Store(_) => 50001,
            RegistryError::NotFound => 404,
        }
    }

    /// The HTTP status: the first three digits of the code.
    pub fn status(&self) -> u16 {
        let code = self.code();
        (if code >= 10_000 { code / 100 } else { code }) as u16
    }
}
