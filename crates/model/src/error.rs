//! The one error type of the model, worded for the person at the keyboard.

/// Everything that can go wrong when reading, validating or changing a case.
///
/// Each message is one sentence that says what happened and what to do about it.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// The key names no field of a case report.
    #[error("unknown field `{key}`{}", did_you_mean(.suggestion))]
    UnknownField {
        /// The key as given.
        key: String,
        /// The nearest known key, when one is close enough to be a likely typo.
        suggestion: Option<String>,
    },

    /// The value does not fit the field's type.
    #[error("invalid value `{value}` for `{key}`: expected {expected}{}", did_you_mean(.suggestion))]
    InvalidValue {
        /// The field key.
        key: String,
        /// The value as given.
        value: String,
        /// What the field accepts, as a phrase (see [`crate::FieldType::describe`]).
        expected: String,
        /// The allowed value most like it, when one is close enough to be a likely typo.
        suggestion: Option<String>,
    },

    /// A `--set` argument that is not of the form `key=value`.
    #[error("expected key=value, got `{0}`: write each change as key=value, for example incident.cause=unknown.")]
    BadAssignment(String),

    /// The key names part of a case that is fixed or append-only.
    #[error("`{key}` cannot be set: {reason}", key = .0, reason = not_settable_reason(.0))]
    NotSettable(String),

    /// A status that takes a verification with a basis.
    #[error("a case becomes {0} only through the office's verification, with its basis.")]
    NeedsVerification(String),

    /// A confirmation of a case whose counted field holds values set concurrently: the
    /// confirmation binds one value of each.
    #[error("`{0}` holds values set concurrently; keep one of them before confirming the case, so that the confirmation binds one value.")]
    UnsettledConfirmation(String),

    /// A place code that is not 2 to 6 letters or digits.
    #[error("invalid place code `{0}`: use 2 to 6 letters or digits, for example KHR.")]
    InvalidPlace(String),

    /// A team code that is not 1 to 8 letters or digits.
    #[error("invalid team code `{0}`: use 1 to 8 letters or digits, for example T03.")]
    InvalidTeam(String),

    /// A device tag that is not 4 Crockford base32 characters.
    #[error(
        "invalid device tag `{0}`: expected 4 characters from 0-9 and A-Z without I, L, O and U."
    )]
    InvalidDeviceTag(String),

    /// A case reference that is not of the form PLACE-TEAM-TAG-NNNN.
    #[error("invalid case reference `{0}`: expected PLACE-TEAM-TAG-NUMBER, for example KHR-T03-7KQ2-0017.")]
    InvalidReference(String),

    /// The Automerge actor id given by the caller is empty.
    #[error("the device's actor id is empty; the device identity is missing or damaged, so restore it from backup or enroll the device again.")]
    InvalidActor,

    /// The clock gave a time that cannot be written as an RFC 3339 timestamp.
    #[error("the device clock reads {0}, which cannot be recorded; set the clock to the correct date and try again.")]
    BadClock(String),

    /// The case was written by a newer version of Cairn.
    #[error("this case uses schema version {0}, which this version of Cairn does not understand; update Cairn and try again.")]
    UnsupportedSchema(u64),

    /// A change received from another device breaks a rule of the case; the reason is one
    /// clause such as "it changes the case's reference".
    #[error("{0}")]
    Refused(String),

    /// One edit changes more than another device would accept in one change.
    #[error("this edit is too large for one change; make it in several smaller edits.")]
    TooLarge,

    /// One of several changes applied together was refused, for the reason given; the
    /// document was left as it was.
    #[error("{reason}")]
    RefusedChange {
        /// The refused change.
        hash: automerge::ChangeHash,
        /// One clause, as for [`ModelError::Refused`].
        reason: String,
    },

    /// The case's creation has not arrived yet, so there is no case to read.
    #[error("the case's creation has not arrived yet; sync again later.")]
    Incomplete,

    /// Bytes that should hold a case document or change do not.
    #[error("the case data is damaged ({0}); restore it from another device or the office copy.")]
    Corrupt(String),
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!("; did you mean `{s}`?"),
        None => ".".to_string(),
    }
}

fn not_settable_reason(key: &str) -> &'static str {
    match key {
        "verifications" => "it is written only by verifying the case.",
        "reviews" => "it is written only by the office's review.",
        "attachments" => "it is written only by attaching a file.",
        "notes" | "custody" | "sources" => {
            "it is an append-only list, so add an entry to it instead."
        }
        _ => "it is fixed when the case is created.",
    }
}

impl ModelError {
    /// Shorthand for [`ModelError::InvalidValue`].
    pub(crate) fn invalid(key: &str, value: &str, expected: impl Into<String>) -> Self {
        ModelError::InvalidValue {
            key: key.to_string(),
            value: value.to_string(),
            expected: expected.into(),
            suggestion: None,
        }
    }

    /// [`ModelError::InvalidValue`] for a value outside `options`, naming the option most
    /// like it (`targted_strike`: did you mean `targeted_strike`?).
    pub(crate) fn invalid_choice(key: &str, value: &str, options: &'static [&'static str]) -> Self {
        let typed = value.trim().to_lowercase();
        let suggestion = options
            .iter()
            .map(|o| (strsim::jaro_winkler(&typed, o), *o))
            .filter(|(score, _)| *score >= 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, o)| o.to_owned());
        ModelError::InvalidValue {
            key: key.to_string(),
            value: value.to_string(),
            expected: crate::FieldType::Choice(options).describe(),
            suggestion,
        }
    }

    /// Shorthand for [`ModelError::Corrupt`] from any displayable cause.
    pub(crate) fn corrupt(cause: impl std::fmt::Display) -> Self {
        ModelError::Corrupt(cause.to_string())
    }
}
