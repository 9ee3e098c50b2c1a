//! SASL/PLAIN (RFC 4616) as Apache Kafka's brokers speak it: parsing the
//! client's single message ([`parse_plain`]) with the checks and messages of
//! Kafka's `PlainSaslServer`, and the users a `PlainLoginModule` JAAS
//! configuration declares ([`JaasPlainUsers`]), as Kafka's
//! `PlainServerCallbackHandler` reads them.
//!
//! Pure computation: the caller owns the connection, chooses where
//! passwords are checked (JAAS users, SCRAM credentials) and maps a
//! [`PlainError`] onto a `SaslAuthenticate` response.

use std::collections::HashMap;
use std::fmt;
use std::iter::Peekable;
use std::str::Chars;

use crate::scram::constant_time_eq;

/// The SASL mechanism name.
pub const PLAIN_MECHANISM: &str = "PLAIN";

/// Largest SASL/PLAIN message accepted, in bytes. RFC 4616 requires
/// accepting up to 255 bytes for each of the three fields; this leaves room
/// for long passwords while refusing anything else before it is parsed.
pub const MAX_PLAIN_MESSAGE_SIZE: usize = 1024;

/// The login module whose `user_<name>="<password>"` options declare the
/// users of a PLAIN listener.
pub const PLAIN_LOGIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";

/// Longest JAAS configuration [`JaasPlainUsers::parse`] accepts, in bytes.
pub const MAX_JAAS_CONFIG_SIZE: usize = 1 << 20;

/// Kafka's error code `SASL_AUTHENTICATION_FAILED`.
const SASL_AUTHENTICATION_FAILED: i16 = 58;

/// The prefix of the options that declare users.
const USER_OPTION_PREFIX: &str = "user_";

/// A username and password from a well-formed SASL/PLAIN message. `Debug`
/// leaves the password out.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainCredentials {
    /// The authentication identity (`authcid`), never empty. It is also the
    /// authorization identity: a different `authzid` is refused.
    pub username: String,
    /// The password, never empty.
    pub password: String,
}

impl fmt::Debug for PlainCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainCredentials").field("username", &self.username).finish_non_exhaustive()
    }
}

/// Why a SASL/PLAIN authentication failed.
///
/// `Display` is exactly the message Kafka sends to the client with
/// `SASL_AUTHENTICATION_FAILED` (all of Kafka's PLAIN failures are sent
/// verbatim).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlainError {
    /// The message is larger than [`MAX_PLAIN_MESSAGE_SIZE`].
    #[error("Invalid SASL/PLAIN response: message larger than {MAX_PLAIN_MESSAGE_SIZE} bytes")]
    MessageTooLarge {
        /// Size of the refused message in bytes.
        size: usize,
    },
    /// The message does not have exactly three NUL-separated fields (the
    /// count is capped at 4, as Kafka counts).
    #[error("Invalid SASL/PLAIN response: expected 3 tokens, got {0}")]
    TokenCount(usize),
    /// The username field is empty.
    #[error("Authentication failed: username not specified")]
    UsernameNotSpecified,
    /// The password field is empty.
    #[error("Authentication failed: password not specified")]
    PasswordNotSpecified,
    /// The username or password is wrong (also returned by the parser when
    /// either is not UTF-8, which no configured credential can match).
    #[error("Authentication failed: Invalid username or password")]
    InvalidUsernameOrPassword,
    /// The message names an authorization id different from the username.
    #[error("Authentication failed: Client requested an authorization id that is different from username")]
    AuthorizationIdMismatch,
}

impl PlainError {
    /// The Kafka error code of the response: always
    /// `SASL_AUTHENTICATION_FAILED` (58).
    pub fn error_code(&self) -> i16 {
        SASL_AUTHENTICATION_FAILED
    }

    /// Whether the message itself was not a valid SASL/PLAIN message (as
    /// opposed to one carrying missing or bad credentials).
    pub fn is_malformed(&self) -> bool {
        matches!(self, Self::MessageTooLarge { .. } | Self::TokenCount(_))
    }
}

/// Parses a SASL/PLAIN message, `[authzid] NUL authcid NUL passwd`, with the
/// checks of Kafka's `PlainSaslServer` in its order: three fields, a
/// non-empty username, a non-empty password, then (where Kafka would check
/// the password) valid UTF-8, then an authorization id that is empty or
/// equal to the username. The password itself is checked by the caller,
/// which answers a wrong one with [`PlainError::InvalidUsernameOrPassword`].
pub fn parse_plain(message: &[u8]) -> Result<PlainCredentials, PlainError> {
    if message.len() > MAX_PLAIN_MESSAGE_SIZE {
        return Err(PlainError::MessageTooLarge { size: message.len() });
    }
    // Kafka splits at up to three NULs and reports the number of pieces.
    let fields: Vec<&[u8]> = message.splitn(4, |&b| b == 0).collect();
    let [authzid, username, password] = fields[..] else {
        return Err(PlainError::TokenCount(fields.len()));
    };
    if username.is_empty() {
        return Err(PlainError::UsernameNotSpecified);
    }
    if password.is_empty() {
        return Err(PlainError::PasswordNotSpecified);
    }
    let (Ok(username), Ok(password)) = (std::str::from_utf8(username), std::str::from_utf8(password)) else {
        return Err(PlainError::InvalidUsernameOrPassword);
    };
    if !authzid.is_empty() && authzid != username.as_bytes() {
        return Err(PlainError::AuthorizationIdMismatch);
    }
    Ok(PlainCredentials { username: username.to_owned(), password: password.to_owned() })
}

/// Why a JAAS configuration was refused. The messages are those of Kafka's
/// `JaasConfig` and `JaasContext`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JaasError {
    /// The configuration is larger than [`MAX_JAAS_CONFIG_SIZE`].
    #[error("JAAS config is larger than {MAX_JAAS_CONFIG_SIZE} bytes")]
    TooLarge,
    /// The configuration holds no entry.
    #[error("Login module not specified in JAAS config")]
    NoLoginModule,
    /// The configuration holds more than one entry.
    #[error("JAAS config property contains {0} login modules, should be 1 module")]
    LoginModuleCount(usize),
    /// The login module name is missing, empty or not a word.
    #[error("Invalid login module name in JAAS config")]
    InvalidLoginModuleName,
    /// The configuration ends after the login module name.
    #[error("Login module control flag not specified in JAAS config")]
    ControlFlagNotSpecified,
    /// The control flag is not a word or quoted string.
    #[error("Login module control flag is not available in the JAAS config")]
    ControlFlagNotAvailable,
    /// The control flag is not `required`, `requisite`, `sufficient` or
    /// `optional` (any case).
    #[error("Invalid login module control flag '{0}' in JAAS config")]
    InvalidControlFlag(String),
    /// An option has no `=` or no value (`null` names a key that was not a
    /// word or quoted string).
    #[error("Value not specified for key '{0}' in JAAS config")]
    ValueNotSpecified(String),
    /// The entry does not end with `;`.
    #[error("JAAS config entry not terminated by semi-colon")]
    NotTerminated,
}

/// The users declared by a `sasl.jaas.config` value for `PlainLoginModule`:
/// each `user_<name>="<password>"` option declares user `<name>`. Other
/// options (`username`, `password`, ...) are ignored. `Debug` shows only the
/// usernames.
#[derive(Clone, Default)]
pub struct JaasPlainUsers {
    login_module: String,
    users: HashMap<String, String>,
}

impl fmt::Debug for JaasPlainUsers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.usernames().collect();
        names.sort_unstable();
        f.debug_struct("JaasPlainUsers").field("login_module", &self.login_module).field("users", &names).finish()
    }
}

impl JaasPlainUsers {
    /// Parses a JAAS configuration value of the form
    /// `<LoginModuleClass> <controlFlag> (<key>=<value>)*;` with the
    /// tokenizing rules Kafka uses (Java's `StreamTokenizer`: `//` and
    /// `/* */` comments, values as words or as single- or double-quoted
    /// strings with backslash escapes). As for Kafka's `sasl.jaas.config`,
    /// exactly one entry is allowed. If its module is not
    /// [`PLAIN_LOGIN_MODULE`] no user is declared, as with Kafka.
    pub fn parse(config: &str) -> Result<Self, JaasError> {
        if config.len() > MAX_JAAS_CONFIG_SIZE {
            return Err(JaasError::TooLarge);
        }
        let mut tokens = Tokenizer::new(config);
        let mut entries = Vec::new();
        loop {
            let token = tokens.next_token();
            if token == Token::Eof {
                break;
            }
            entries.push(parse_entry(token, &mut tokens)?);
        }
        let mut entries = entries.into_iter();
        let (login_module, options) = match (entries.next(), entries.len()) {
            (None, _) => return Err(JaasError::NoLoginModule),
            (Some(entry), 0) => entry,
            (Some(_), more) => return Err(JaasError::LoginModuleCount(more + 1)),
        };
        let users = if login_module == PLAIN_LOGIN_MODULE {
            options
                .into_iter()
                .filter_map(|(key, value)| key.strip_prefix(USER_OPTION_PREFIX).map(|name| (name.to_owned(), value)))
                .collect()
        } else {
            HashMap::new()
        };
        Ok(Self { login_module, users })
    }

    /// The login module class named by the configuration.
    pub fn login_module(&self) -> &str {
        &self.login_module
    }

    /// Checks a password: `None` if the user is not declared, otherwise
    /// whether the password matches (compared in constant time).
    pub fn check(&self, user: &str, password: &str) -> Option<bool> {
        self.users.get(user).map(|expected| constant_time_eq(password.as_bytes(), expected.as_bytes()))
    }

    /// Checks parsed credentials as Kafka's `PlainServerCallbackHandler`
    /// does: an unknown user and a wrong password fail alike.
    pub fn authenticate(&self, credentials: &PlainCredentials) -> Result<(), PlainError> {
        match self.check(&credentials.username, &credentials.password) {
            Some(true) => Ok(()),
            _ => Err(PlainError::InvalidUsernameOrPassword),
        }
    }

    /// Whether `user` is declared.
    pub fn contains(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    /// The declared usernames, in no particular order.
    pub fn usernames(&self) -> impl Iterator<Item = &str> + '_ {
        self.users.keys().map(String::as_str)
    }

    /// How many users are declared.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether no user is declared.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// Parses one entry after its first token; returns the module name and its
/// options (a later duplicate key wins).
fn parse_entry(first: Token, tokens: &mut Tokenizer<'_>) -> Result<(String, HashMap<String, String>), JaasError> {
    let login_module = first.into_text();
    let flag = match tokens.next_token() {
        Token::Eof => return Err(JaasError::ControlFlagNotSpecified),
        token => token.into_text().ok_or(JaasError::ControlFlagNotAvailable)?,
    };
    if !matches!(flag.to_uppercase().as_str(), "REQUIRED" | "REQUISITE" | "SUFFICIENT" | "OPTIONAL") {
        return Err(JaasError::InvalidControlFlag(flag));
    }
    let mut options = HashMap::new();
    let last = loop {
        let token = tokens.next_token();
        if matches!(token, Token::Eof | Token::Char(';')) {
            break token;
        }
        let key = token.into_text();
        let value = match tokens.next_token() {
            Token::Char('=') => tokens.next_token().into_text(),
            _ => None,
        };
        let Some(value) = value else {
            return Err(JaasError::ValueNotSpecified(key.unwrap_or_else(|| "null".to_owned())));
        };
        if let Some(key) = key {
            options.insert(key, value);
        }
    };
    if last != Token::Char(';') {
        return Err(JaasError::NotTerminated);
    }
    match login_module {
        Some(name) if !name.is_empty() => Ok((name, options)),
        _ => Err(JaasError::InvalidLoginModuleName),
    }
}

/// A token of Java's `StreamTokenizer` as Kafka configures it.
#[derive(Debug, PartialEq, Eq)]
enum Token {
    Eof,
    Word(String),
    Quoted(String),
    /// A number; it has no text, so it cannot be a key or value.
    Number,
    /// Any other single character, `=` and `;` among them.
    Char(char),
}

impl Token {
    /// The token's text (`sval`), for words and quoted strings.
    fn into_text(self) -> Option<String> {
        match self {
            Token::Word(s) | Token::Quoted(s) => Some(s),
            _ => None,
        }
    }
}

fn is_whitespace(c: char) -> bool {
    c <= ' '
}

fn is_numeric(c: char) -> bool {
    c.is_ascii_digit() || c == '.' || c == '-'
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphabetic() || matches!(c, '-' | '_' | '$') || ('\u{A0}'..='\u{FF}').contains(&c) || u32::from(c) >= 256
}

/// Java's `StreamTokenizer` with Kafka's settings: whitespace is anything up
/// to space; words are letters, Latin-1 letters, any character above 255,
/// `-`, `_` and `$`, continued by those and digits and `.`; numbers start
/// with a digit, `.` or `-`; `"` and `'` quote; `//`, `/* */` and a lone
/// `/` start comments.
struct Tokenizer<'a> {
    chars: Peekable<Chars<'a>>,
}

impl<'a> Tokenizer<'a> {
    fn new(text: &'a str) -> Self {
        Self { chars: text.chars().peekable() }
    }

    fn next_token(&mut self) -> Token {
        loop {
            let Some(c) = self.chars.next() else {
                return Token::Eof;
            };
            if is_whitespace(c) {
                continue;
            }
            if is_numeric(c) {
                return self.number(c);
            }
            if is_word(c) {
                let mut word = String::from(c);
                while let Some(&next) = self.chars.peek() {
                    if !(is_word(next) || is_numeric(next)) {
                        break;
                    }
                    word.push(next);
                    self.chars.next();
                }
                return Token::Word(word);
            }
            if c == '"' || c == '\'' {
                return Token::Quoted(self.quoted(c));
            }
            if c == '/' {
                match self.chars.next() {
                    None => return Token::Eof,
                    Some('*') => {
                        if !self.skip_block_comment() {
                            return Token::Eof;
                        }
                    }
                    // `//` and a lone `/` both comment out the rest of the
                    // line (the character after the `/` is consumed first).
                    Some(_) => while self.chars.next_if(|&c| c != '\n' && c != '\r').is_some() {},
                }
                continue;
            }
            return Token::Char(c);
        }
    }

    fn number(&mut self, first: char) -> Token {
        let mut seen_dot = first == '.';
        if first == '-' {
            match self.chars.peek() {
                Some(&c) if c == '.' || c.is_ascii_digit() => {}
                _ => return Token::Char('-'),
            }
        }
        while let Some(&c) = self.chars.peek() {
            if c == '.' && !seen_dot {
                seen_dot = true;
            } else if !c.is_ascii_digit() {
                break;
            }
            self.chars.next();
        }
        Token::Number
    }

    /// Reads a quoted string after its opening quote: it ends at the
    /// matching quote, at a line break (left unread) or at the end.
    fn quoted(&mut self, quote: char) -> String {
        let mut out = String::new();
        while let Some(c) = self.chars.next_if(|&c| c != '\n' && c != '\r') {
            if c == quote {
                break;
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            let Some(escaped) = self.chars.next() else {
                break;
            };
            let value = match escaped.to_digit(8) {
                Some(first) => self.octal_escape(first),
                None => match escaped {
                    'a' => '\u{7}',
                    'b' => '\u{8}',
                    'f' => '\u{C}',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'v' => '\u{B}',
                    other => other,
                },
            };
            out.push(value);
        }
        out
    }

    /// Reads the rest of an octal escape whose first digit is `first`: up
    /// to two more digits, the third only when `first` is 0 to 3, so the
    /// value never exceeds 0o377.
    fn octal_escape(&mut self, first: u32) -> char {
        let mut value = first;
        for position in 1..3 {
            if position == 2 && first > 3 {
                break;
            }
            let Some(digit) = self.chars.peek().and_then(|c| c.to_digit(8)) else {
                break;
            };
            self.chars.next();
            value = value * 8 + digit;
        }
        char::from_u32(value).unwrap_or(char::REPLACEMENT_CHARACTER)
    }

    /// Skips a `/* */` comment after its `/*`; `false` if it runs to the
    /// end. As in Java, the character after a line break is never taken as
    /// the closing `/`.
    fn skip_block_comment(&mut self) -> bool {
        let mut previous = '\0';
        loop {
            let Some(mut c) = self.chars.next() else {
                return false;
            };
            if c == '/' && previous == '*' {
                return true;
            }
            if c == '\r' {
                let Some(next) = self.chars.next() else {
                    return false;
                };
                c = next;
                if c == '\n' {
                    let Some(next) = self.chars.next() else {
                        return false;
                    };
                    c = next;
                }
            } else if c == '\n' {
                let Some(next) = self.chars.next() else {
                    return false;
                };
                c = next;
            }
            previous = c;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_messages() {
        assert_eq!(
            parse_plain(b"\0alice\0alice-secret"),
            Ok(PlainCredentials { username: "alice".to_owned(), password: "alice-secret".to_owned() })
        );
        assert_eq!(parse_plain(b"alice\0alice\0pw").map(|c| c.username), Ok("alice".to_owned()));
        assert_eq!(
            parse_plain("\0jos\u{e9}\0p\u{e4}ss".as_bytes()).map(|c| (c.username, c.password)),
            Ok(("jos\u{e9}".to_owned(), "p\u{e4}ss".to_owned()))
        );
        let debug = format!("{:?}", parse_plain(b"\0u\0hunter2").unwrap());
        assert!(!debug.contains("hunter2"));
    }

    #[test]
    fn plain_errors_match_kafka() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "Invalid SASL/PLAIN response: expected 3 tokens, got 1"),
            (b"alice", "Invalid SASL/PLAIN response: expected 3 tokens, got 1"),
            (b"\0alice", "Invalid SASL/PLAIN response: expected 3 tokens, got 2"),
            (b"\0alice\0pw\0", "Invalid SASL/PLAIN response: expected 3 tokens, got 4"),
            (b"\0\0\0\0\0\0", "Invalid SASL/PLAIN response: expected 3 tokens, got 4"),
            (b"\0\0pw", "Authentication failed: username not specified"),
            (b"\0\0", "Authentication failed: username not specified"),
            (b"\0alice\0", "Authentication failed: password not specified"),
            (b"\0al\xffice\0pw", "Authentication failed: Invalid username or password"),
            (b"\0alice\0p\xc3", "Authentication failed: Invalid username or password"),
            (
                b"bob\0alice\0pw",
                "Authentication failed: Client requested an authorization id that is different from username",
            ),
            (
                b"\xff\0alice\0pw",
                "Authentication failed: Client requested an authorization id that is different from username",
            ),
        ];
        for (message, expected) in cases {
            let err = parse_plain(message).unwrap_err();
            assert_eq!(err.to_string(), *expected, "{message:?}");
            assert_eq!(err.error_code(), 58);
        }
        let big = [b"\0alice\0".as_slice(), &[b'p'; MAX_PLAIN_MESSAGE_SIZE]].concat();
        let err = parse_plain(&big).unwrap_err();
        assert!(err.is_malformed());
        assert!(matches!(err, PlainError::MessageTooLarge { .. }));
        let mut max = vec![b'p'; MAX_PLAIN_MESSAGE_SIZE];
        max[0] = 0;
        max[1] = b'u';
        max[2] = 0;
        assert!(parse_plain(&max).is_ok());
    }

    #[test]
    fn plain_arbitrary_input_never_panics() {
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..5000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| {
                    let b = (state >> (i % 8 * 8)) as u8;
                    if b < 0x40 {
                        0
                    } else {
                        b
                    }
                })
                .collect();
            let _ = parse_plain(&bytes);
        }
    }

    const KAFKA_EXAMPLE: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";"#;

    #[test]
    fn jaas_users_from_kafka_example() {
        let users = JaasPlainUsers::parse(KAFKA_EXAMPLE).unwrap();
        assert_eq!(users.login_module(), PLAIN_LOGIN_MODULE);
        assert_eq!(users.len(), 2);
        assert_eq!(users.check("admin", "admin-secret"), Some(true));
        assert_eq!(users.check("alice", "alice-secret"), Some(true));
        assert_eq!(users.check("alice", "admin-secret"), Some(false));
        assert_eq!(users.check("alice", "alice-secre"), Some(false));
        assert_eq!(users.check("alice", ""), Some(false));
        assert_eq!(users.check("bob", "x"), None);
        assert!(users.contains("admin"));
        assert!(!users.contains("username"));
        let alice = parse_plain(b"\0alice\0alice-secret").unwrap();
        assert_eq!(users.authenticate(&alice), Ok(()));
        let wrong = parse_plain(b"\0alice\0nope").unwrap();
        assert_eq!(
            users.authenticate(&wrong).unwrap_err().to_string(),
            "Authentication failed: Invalid username or password"
        );
        let debug = format!("{users:?}");
        assert!(debug.contains("alice") && !debug.contains("alice-secret"));
    }

    #[test]
    fn jaas_quoting_escapes_and_comments() {
        let config = "org.apache.kafka.common.security.plain.PlainLoginModule REQUIRED\n\
            // a comment with user_x=\"no\"\n\
            user_q=\"say \\\"hi\\\" \\\\ \\t\\101\\0101\"\n\
            /* block\n * user_y=\"no\" */ user_single='it\\'s'\n\
            user_bare=plain-word.2\n\
            user_dup=\"first\" user_dup=\"second\"\n\
            \"user_quoted key\"=\"v\"\n\
            other=\"ignored\" user_semi=\"a;b=c,d\";";
        let users = JaasPlainUsers::parse(config).unwrap();
        assert_eq!(users.check("q", "say \"hi\" \\ \tA\u{8}1"), Some(true));
        assert_eq!(users.check("single", "it's"), Some(true));
        assert_eq!(users.check("bare", "plain-word.2"), Some(true));
        assert_eq!(users.check("dup", "second"), Some(true));
        assert_eq!(users.check("quoted key", "v"), Some(true));
        assert_eq!(users.check("semi", "a;b=c,d"), Some(true));
        assert_eq!(users.check("x", "no"), None);
        assert_eq!(users.check("y", "no"), None);
        assert!(!users.contains("other"));
    }

    #[test]
    fn jaas_single_quotes() {
        let users =
            JaasPlainUsers::parse("org.apache.kafka.common.security.plain.PlainLoginModule optional user_a='p\"w';")
                .unwrap();
        assert_eq!(users.check("a", "p\"w"), Some(true));
    }

    #[test]
    fn jaas_other_module_declares_nobody() {
        let users =
            JaasPlainUsers::parse(r#"org.apache.kafka.common.security.scram.ScramLoginModule required user_a="b";"#)
                .unwrap();
        assert!(users.is_empty());
        assert_eq!(users.login_module(), "org.apache.kafka.common.security.scram.ScramLoginModule");
    }

    #[test]
    fn jaas_errors_match_kafka() {
        let module = PLAIN_LOGIN_MODULE;
        let cases = [
            (String::new(), "Login module not specified in JAAS config"),
            ("  // nothing\n".to_owned(), "Login module not specified in JAAS config"),
            (module.to_owned(), "Login module control flag not specified in JAAS config"),
            (format!("{module} ;"), "Login module control flag is not available in the JAAS config"),
            (format!("{module} needed;"), "Invalid login module control flag 'needed' in JAAS config"),
            (format!("{module} required user_a;"), "Value not specified for key 'user_a' in JAAS config"),
            (format!("{module} required user_a=;"), "Value not specified for key 'user_a' in JAAS config"),
            (format!("{module} required user_a=123;"), "Value not specified for key 'user_a' in JAAS config"),
            (format!("{module} required user_a=-x;"), "Value not specified for key 'user_a' in JAAS config"),
            (format!("{module} required = \"x\";"), "Value not specified for key 'null' in JAAS config"),
            (format!("{module} required user_a=\"b\""), "JAAS config entry not terminated by semi-colon"),
            (
                format!("{module} required; {module} required;"),
                "JAAS config property contains 2 login modules, should be 1 module",
            ),
            ("; required;".to_owned(), "Invalid login module name in JAAS config"),
            ("\"\" required;".to_owned(), "Invalid login module name in JAAS config"),
            (
                format!("{module} required user_a=\"b\" /* unterminated"),
                "JAAS config entry not terminated by semi-colon",
            ),
        ];
        for (config, expected) in cases {
            let err = JaasPlainUsers::parse(&config).unwrap_err();
            assert_eq!(err.to_string(), expected, "{config}");
        }
        let huge = "a".repeat(MAX_JAAS_CONFIG_SIZE + 1);
        assert_eq!(JaasPlainUsers::parse(&huge).unwrap_err(), JaasError::TooLarge);
    }

    #[test]
    fn jaas_tokenizer_edge_cases() {
        let mut t = Tokenizer::new("abc-1.2 -5 - .5 \u{e9}t\u{e9} \u{4e2d} = ; 12ab 'x\ny' 'open");
        assert_eq!(t.next_token(), Token::Word("abc-1.2".to_owned()));
        assert_eq!(t.next_token(), Token::Number);
        assert_eq!(t.next_token(), Token::Char('-'));
        assert_eq!(t.next_token(), Token::Number);
        assert_eq!(t.next_token(), Token::Word("\u{e9}t\u{e9}".to_owned()));
        assert_eq!(t.next_token(), Token::Word("\u{4e2d}".to_owned()));
        assert_eq!(t.next_token(), Token::Char('='));
        assert_eq!(t.next_token(), Token::Char(';'));
        assert_eq!(t.next_token(), Token::Number);
        assert_eq!(t.next_token(), Token::Word("ab".to_owned()));
        assert_eq!(t.next_token(), Token::Quoted("x".to_owned()));
        assert_eq!(t.next_token(), Token::Word("y".to_owned()));
        assert_eq!(t.next_token(), Token::Quoted(" ".to_owned()));
        assert_eq!(t.next_token(), Token::Word("open".to_owned()));
        assert_eq!(t.next_token(), Token::Eof);
        assert_eq!(t.next_token(), Token::Eof);
        let mut t = Tokenizer::new("a / skipped\nb /* x */ c /**/ d");
        let words: Vec<Token> = std::iter::from_fn(|| match t.next_token() {
            Token::Eof => None,
            token => Some(token),
        })
        .collect();
        assert_eq!(words, Vec::from(["a", "b", "c", "d"].map(|w| Token::Word(w.to_owned()))));
    }

    #[test]
    fn jaas_arbitrary_input_never_panics() {
        let alphabet: Vec<char> = "ab_=;\"'\\/*\n\r 0-.7é中\t$".chars().collect();
        let mut state: u64 = 0x853C_49E6_748F_EA9B;
        for _ in 0..3000 {
            let mut text = String::from("x y ");
            for _ in 0..(state % 60) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let _ = JaasPlainUsers::parse(&text);
        }
    }
}
