//! Principals and the mapping of TLS client certificates to them.
//!
//! * [`KafkaPrincipal`]: `Type:name`, e.g. `User:alice`.
//! * [`subject_dn`]: a certificate's subject as Java's
//!   `X500Principal.getName()` prints it (RFC 2253).
//! * [`SslPrincipalMapper`]: Kafka's `ssl.principal.mapping.rules`, turning
//!   that subject into a principal name.
//!
//! An mTLS client's principal is `User:` followed by the mapped subject
//! ([`SslPrincipalMapper::principal_for_certificate`]); a TLS client without
//! a certificate, like a plaintext one, is [`ANONYMOUS`].

use std::fmt;
use std::str::FromStr;

use regex::{Captures, Regex, RegexBuilder};
use x509_parser::certificate::X509CertificateParser;
use x509_parser::der_parser::asn1_rs::Class;
use x509_parser::nom::Parser;
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// The principal type of users (`User`).
pub const USER_TYPE: &str = "User";

/// The principal of unauthenticated clients, `User:ANONYMOUS`.
pub const ANONYMOUS: &str = "User:ANONYMOUS";

/// Kafka's default `ssl.principal.mapping.rules`: the subject unchanged.
pub const DEFAULT_SSL_PRINCIPAL_MAPPING_RULES: &str = "DEFAULT";

/// A Kafka principal: a type (`User`) and a name. Displayed and parsed as
/// `Type:name`, the form ACLs and `super.users` use.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KafkaPrincipal {
    /// The principal type, e.g. `User`.
    pub principal_type: String,
    /// The principal name.
    pub name: String,
}

impl KafkaPrincipal {
    /// A principal of the given type and name.
    pub fn new(principal_type: impl Into<String>, name: impl Into<String>) -> Self {
        KafkaPrincipal { principal_type: principal_type.into(), name: name.into() }
    }

    /// `User:<name>`.
    pub fn user(name: impl Into<String>) -> Self {
        Self::new(USER_TYPE, name)
    }

    /// `User:ANONYMOUS`.
    pub fn anonymous() -> Self {
        Self::user("ANONYMOUS")
    }

    /// Whether this is `User:ANONYMOUS`.
    pub fn is_anonymous(&self) -> bool {
        self.principal_type == USER_TYPE && self.name == "ANONYMOUS"
    }

    /// Parses `Type:name`, split at the first `:` (the name may contain
    /// more colons, and either part may be empty), as Kafka's
    /// `SecurityUtils.parseKafkaPrincipal` does.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            Some((principal_type, name)) => Ok(Self::new(principal_type, name)),
            None => Err(format!("expected a string in format principalType:principalName but got {s}")),
        }
    }
}

impl fmt::Display for KafkaPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.principal_type, self.name)
    }
}

impl FromStr for KafkaPrincipal {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The certificate's subject as Java's `X500Principal.getName()` prints it
/// (RFC 2253), which is what Kafka hands to its principal mapping rules.
///
/// * RDNs in reverse order of the DER sequence, joined by `,`; the values
///   of a multi-valued RDN in DER order, joined by `+`.
/// * Attribute types CN, C, L, ST, O, OU, STREET, DC and UID by keyword;
///   any other as its dotted-decimal OID, with the value as `#` and the
///   lower-case hex of its DER encoding (so `emailAddress` prints as
///   `1.2.840.113549.1.9.1=#16...`).
/// * Values of type PrintableString, TeletexString, IA5String,
///   GeneralString, BMPString or UTF8String as text, their bytes read as
///   UTF-8 (invalid sequences replaced, as Java does — Java also reads
///   BMPString bytes this way); other types in the `#` hex form.
/// * Escaping as Java's: a backslash before each of `,=+<>#;"\` anywhere,
///   `\00` for NUL, and a backslash before each leading or trailing space
///   or carriage return.
///
/// The certificate must be well-formed DER; the error says why it is not.
pub fn subject_dn(cert_der: &[u8]) -> Result<String, String> {
    let mut parser = X509CertificateParser::new().with_deep_parse_extensions(false);
    let (_, cert) = parser.parse(cert_der).map_err(|e| format!("invalid certificate: {e}"))?;
    Ok(rfc2253_name(cert.subject()))
}

fn rfc2253_name(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| {
            let avas: Vec<String> = rdn.iter().map(rfc2253_ava).collect();
            avas.join("+")
        })
        .collect();
    let mut out = String::new();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(rdn);
    }
    out
}

/// OIDs Java prints by keyword in RFC 2253 form.
const RFC2253_KEYWORDS: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

fn rfc2253_ava(ava: &AttributeTypeAndValue<'_>) -> String {
    let oid = oid_to_dotted(ava.attr_type().as_bytes());
    let keyword = RFC2253_KEYWORDS.iter().find(|(dotted, _)| *dotted == oid).map(|(_, keyword)| *keyword);
    let value = ava.attr_value();
    let header = &value.header;
    let is_text = header.class() == Class::Universal
        && !header.is_constructed()
        // UTF8String, PrintableString, TeletexString, IA5String,
        // GeneralString, BMPString.
        && matches!(header.tag().0, 12 | 19 | 20 | 22 | 27 | 30);
    let mut out = String::new();
    match keyword {
        Some(keyword) if is_text => {
            out.push_str(keyword);
            out.push('=');
            escape_value(&String::from_utf8_lossy(value.data), &mut out);
        }
        _ => {
            out.push_str(keyword.unwrap_or(&oid));
            out.push_str("=#");
            let mut der = Vec::with_capacity(value.data.len() + 6);
            encode_header(
                header.class() as u8,
                header.is_constructed(),
                header.tag().0,
                header.raw_tag(),
                value.data.len(),
                &mut der,
            );
            der.extend_from_slice(value.data);
            const HEX: &[u8; 16] = b"0123456789abcdef";
            for b in der {
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0x0f)]));
            }
        }
    }
    out
}

/// Java's RFC 2253 escaping of an attribute value (see [`subject_dn`]).
fn escape_value(value: &str, out: &mut String) {
    let mut escaped = String::with_capacity(value.len() + 4);
    for c in value.chars() {
        match c {
            ',' | '=' | '+' | '<' | '>' | '#' | ';' | '"' | '\\' => {
                escaped.push('\\');
                escaped.push(c);
            }
            '\0' => escaped.push_str("\\00"),
            _ => escaped.push(c),
        }
    }
    let is_space = |c: char| c == ' ' || c == '\r';
    let chars: Vec<char> = escaped.chars().collect();
    let lead = chars.iter().take_while(|&&c| is_space(c)).count();
    let trail_start = chars.len() - chars.iter().rev().take_while(|&&c| is_space(c)).count();
    for (i, &c) in chars.iter().enumerate() {
        if i < lead || i >= trail_start {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Writes a DER identifier and definite length.
fn encode_header(class: u8, constructed: bool, tag: u32, raw_tag: Option<&[u8]>, len: usize, out: &mut Vec<u8>) {
    match raw_tag {
        Some(raw) if !raw.is_empty() => out.extend_from_slice(raw),
        _ => {
            let first = (class << 6) | if constructed { 0x20 } else { 0 };
            if tag < 31 {
                out.push(first | tag as u8);
            } else {
                out.push(first | 0x1f);
                let mut groups = Vec::new();
                let mut t = tag;
                loop {
                    groups.push((t & 0x7f) as u8);
                    t >>= 7;
                    if t == 0 {
                        break;
                    }
                }
                let last = groups.len() - 1;
                for (i, g) in groups.iter().rev().enumerate() {
                    out.push(if i == last { *g } else { g | 0x80 });
                }
            }
        }
    }
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// Dotted-decimal form of DER OID content bytes, with arcs of any size.
fn oid_to_dotted(content: &[u8]) -> String {
    // Each arc accumulates in base 10^9 limbs, least significant first.
    const BASE: u64 = 1_000_000_000;
    fn mul_add(limbs: &mut Vec<u64>, mul: u64, add: u64) {
        let mut carry = add;
        for limb in limbs.iter_mut() {
            let v = *limb * mul + carry;
            *limb = v % BASE;
            carry = v / BASE;
        }
        while carry > 0 {
            limbs.push(carry % BASE);
            carry /= BASE;
        }
    }
    fn to_decimal(limbs: &[u64]) -> String {
        let mut s = String::new();
        match limbs.split_last() {
            None => s.push('0'),
            Some((top, rest)) => {
                s.push_str(&top.to_string());
                for limb in rest.iter().rev() {
                    s.push_str(&format!("{limb:09}"));
                }
            }
        }
        s
    }

    let mut arcs: Vec<Vec<u64>> = Vec::new();
    let mut current: Vec<u64> = Vec::new();
    for &b in content {
        mul_add(&mut current, 128, u64::from(b & 0x7f));
        if b & 0x80 == 0 {
            arcs.push(std::mem::take(&mut current));
        }
    }
    let mut parts: Vec<String> = Vec::with_capacity(arcs.len() + 1);
    for (i, arc) in arcs.iter().enumerate() {
        if i == 0 {
            // The first subidentifier packs the first two arcs.
            let small = match arc.as_slice() {
                [] => Some(0),
                [v] => Some(*v),
                _ => None,
            };
            match small {
                Some(v) if v < 40 => parts.extend(["0".to_string(), v.to_string()]),
                Some(v) if v < 80 => parts.extend(["1".to_string(), (v - 40).to_string()]),
                _ => {
                    let mut rest = arc.clone();
                    // Subtract 80 from a value of at least 80.
                    let mut borrow = 80u64;
                    for limb in rest.iter_mut() {
                        if borrow == 0 {
                            break;
                        }
                        if *limb >= borrow {
                            *limb -= borrow;
                            borrow = 0;
                        } else {
                            *limb = *limb + BASE - borrow;
                            borrow = 1;
                        }
                    }
                    while rest.len() > 1 && rest.last() == Some(&0) {
                        rest.pop();
                    }
                    parts.extend(["2".to_string(), to_decimal(&rest)]);
                }
            }
        } else {
            parts.push(to_decimal(arc));
        }
    }
    parts.join(".")
}

/// The case change a rule applies to its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CaseChange {
    None,
    Lower,
    Upper,
}

/// One parsed mapping rule.
#[derive(Debug, Clone)]
enum Rule {
    /// `DEFAULT`: the subject unchanged.
    Default,
    /// `RULE:pattern/replacement/[L|U]`.
    Replace {
        /// The pattern as written.
        pattern: String,
        /// The pattern anchored at both ends, for the whole-subject test.
        whole: Regex,
        /// The pattern as written, for replacing.
        search: Regex,
        /// The replacement as written.
        replacement: String,
        case: CaseChange,
    },
}

impl Rule {
    /// The mapped name, `None` if the rule does not apply, or an error from
    /// the replacement (a reference to a missing group, a dangling `\`).
    fn apply(&self, dn: &str) -> Result<Option<String>, String> {
        let Rule::Replace { whole, search, replacement, case, .. } = self else {
            return Ok(Some(dn.to_string()));
        };
        if !whole.is_match(dn) {
            return Ok(None);
        }
        let group_count = search.captures_len().saturating_sub(1);
        let replacement = escape_literal_back_references(replacement, group_count)?;
        let result = replace_all(search, dn, &replacement)?;
        Ok(Some(match case {
            CaseChange::None => result,
            CaseChange::Lower => result.to_lowercase(),
            CaseChange::Upper => result.to_uppercase(),
        }))
    }
}

impl fmt::Display for Rule {
    /// Kafka's `Rule.toString()`: `DEFAULT` or `RULE:pattern/replacement`
    /// plus `/L` or `/U`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Default => f.write_str("DEFAULT"),
            Rule::Replace { pattern, replacement, case, .. } => {
                write!(f, "RULE:{pattern}/{replacement}")?;
                match case {
                    CaseChange::None => Ok(()),
                    CaseChange::Lower => f.write_str("/L"),
                    CaseChange::Upper => f.write_str("/U"),
                }
            }
        }
    }
}

/// Java's `.` (no line terminator) as a character class.
const JAVA_DOT: &str = r"[^\n\r\x{85}\x{2028}\x{2029}]";
/// Java's `\s`.
const JAVA_SPACE: &str = r"[ \t\n\x0B\x0C\r]";
/// Java's `$` without MULTILINE: the end, or before a final line terminator.
const JAVA_END: &str = r"(?:\r\n|[\n\r\x{85}\x{2028}\x{2029}])?\z";
/// Kafka's rule grammar. Groups: 1 `DEFAULT`; 2 pattern; 4 replacement;
/// 6 case flag; 7 anything else (an invalid or empty rule).
const RULE_GRAMMAR: &str = r"(DEFAULT)|RULE:((\\<DOT>|[^\\/])*)/((\\<DOT>|[^\\/])*)/([LU]?)<DOT>*?|(<DOT>*?)";

fn rule_grammar() -> String {
    RULE_GRAMMAR.replace("<DOT>", JAVA_DOT)
}

/// Kafka's `ssl.principal.mapping.rules`: maps a certificate subject (as
/// [`subject_dn`] prints it) to a principal name.
///
/// The value is a comma-separated list of `DEFAULT` (the subject unchanged)
/// and `RULE:pattern/replacement/` rules, optionally followed by `L` or `U`
/// to lower- or upper-case the result. Rules are tried in order and the
/// first that applies wins: a `RULE` applies when its pattern matches the
/// whole subject, and its result is the subject with every match of the
/// pattern replaced by the replacement (`$1`, `${name}` group references,
/// `\` escapes). A subject no rule applies to is an error; so an empty list
/// maps nothing. Inside a rule, `\` escapes the next character, so a pattern
/// or replacement can contain `\/`; commas need no escaping.
///
/// Splitting, parsing, error cases and the treatment of `$n` references to
/// groups that do not exist are those of Kafka's `SslPrincipalMapper`
/// (including its quirks). Patterns are compiled by the `regex` crate, not
/// Java: Java-only syntax (lookaround, backreferences, possessive
/// quantifiers, `\Q…\E`) is refused when the rules are parsed, `\w`, `\d`, `\s` and `\b` are
/// Unicode-aware (Java's are ASCII-only), `$` matches only at the very end,
/// and case changes use Unicode's default mappings (Java's
/// `Locale.ENGLISH` ones agree for all but a few special cases).
#[derive(Debug, Clone)]
pub struct SslPrincipalMapper {
    rules: Vec<Rule>,
}

impl SslPrincipalMapper {
    /// Parses a `ssl.principal.mapping.rules` value; the error names the
    /// invalid rule as Kafka does (``Invalid rule: `x`, unmatched
    /// substring: `y` ``) or the pattern the regex engine refused.
    pub fn parse(rules: &str) -> Result<Self, String> {
        let grammar = rule_grammar();
        let splitter = Regex::new(&format!(r"{JAVA_SPACE}*({grammar}){JAVA_SPACE}*(,{JAVA_SPACE}*|{JAVA_END})"))
            .map_err(|e| format!("internal rule splitter: {e}"))?;
        let parser = Regex::new(&format!(r"\A(?:{grammar})")).map_err(|e| format!("internal rule parser: {e}"))?;

        // Java's String.trim(): every character up to U+0020.
        let trimmed = rules.trim_matches(|c: char| c <= ' ');
        let mut parsed = Vec::new();
        for caps in splitter.captures_iter(trimmed) {
            let rule = caps.get(1).map_or("", |m| m.as_str());
            let Some(fields) = parser.captures(rule) else {
                return Err(format!("Invalid rule: {rule}"));
            };
            let end = fields.get(0).map_or(0, |m| m.end());
            if end != rule.len() {
                return Err(format!("Invalid rule: `{rule}`, unmatched substring: `{}`", &rule[end..]));
            }
            if fields.get(1).is_some() {
                parsed.push(Rule::Default);
            } else if let Some(pattern) = fields.get(2) {
                let pattern = pattern.as_str();
                let replacement = fields.get(4).map_or("", |m| m.as_str());
                let case = match fields.get(6).map(|m| m.as_str()) {
                    Some("L") => CaseChange::Lower,
                    Some("U") => CaseChange::Upper,
                    _ => CaseChange::None,
                };
                let compile = |source: &str| {
                    RegexBuilder::new(source)
                        .crlf(true)
                        .build()
                        .map_err(|e| format!("Invalid rule pattern `{pattern}`: {e}"))
                };
                parsed.push(Rule::Replace {
                    pattern: pattern.to_string(),
                    whole: compile(&format!(r"\A(?:{pattern})\z"))?,
                    search: compile(pattern)?,
                    replacement: replacement.to_string(),
                    case,
                });
            }
            // Anything else is an empty rule, which is ignored.
        }
        Ok(SslPrincipalMapper { rules: parsed })
    }

    /// The name for subject `dn`, from the first rule that applies. Errors:
    /// no rule applies (``No rules apply to <dn>, rules [...]``), or the
    /// applying rule's replacement is invalid for its pattern.
    pub fn map(&self, dn: &str) -> Result<String, String> {
        for rule in &self.rules {
            if let Some(name) = rule.apply(dn)? {
                return Ok(name);
            }
        }
        Err(format!("No rules apply to {dn}, rules {}", self.rules_list()))
    }

    /// The principal of a client presenting `cert_der`: `User:` followed by
    /// the mapped subject.
    pub fn principal_for_certificate(&self, cert_der: &[u8]) -> Result<KafkaPrincipal, String> {
        let dn = subject_dn(cert_der)?;
        let name = self
            .map(&dn)
            .map_err(|e| format!("Failed to map name for '{dn}' based on SSL principal mapping rules: {e}"))?;
        Ok(KafkaPrincipal::user(name))
    }

    fn rules_list(&self) -> String {
        let rules: Vec<String> = self.rules.iter().map(Rule::to_string).collect();
        format!("[{}]", rules.join(", "))
    }
}

impl Default for SslPrincipalMapper {
    /// The `DEFAULT` rule alone.
    fn default() -> Self {
        SslPrincipalMapper { rules: vec![Rule::Default] }
    }
}

impl fmt::Display for SslPrincipalMapper {
    /// Kafka's `toString()`: `SslPrincipalMapper(rules = [...])`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SslPrincipalMapper(rules = {})", self.rules_list())
    }
}

/// Kafka's rewriting of a replacement before use: a `$n` naming a group the
/// pattern does not have is truncated digit by digit (`$12` with one group
/// is `$1` then `2`), and escaped to a literal `$n` if still too large;
/// `$0…` is left alone. With no groups the replacement is unchanged.
///
/// As in Kafka, positions come from the original text while insertions go
/// into the text already rewritten, so a second rewrite lands one place
/// early per earlier one; positions count UTF-16 units, as Java's do.
fn escape_literal_back_references(replacement: &str, group_count: usize) -> Result<String, String> {
    if group_count == 0 {
        return Ok(replacement.to_string());
    }
    let original: Vec<u16> = replacement.encode_utf16().collect();
    let mut value = original.clone();
    let is_digit = |u: u16| (u16::from(b'0')..=u16::from(b'9')).contains(&u);
    let mut i = 0;
    while i < original.len() {
        if original[i] != u16::from(b'$') {
            i += 1;
            continue;
        }
        let digits_start = i + 1;
        let mut j = digits_start;
        while j < original.len() && is_digit(original[j]) {
            j += 1;
        }
        if j == digits_start {
            i += 1;
            continue;
        }
        let digits = &original[digits_start..j];
        if digits[0] != u16::from(b'0') {
            let mut index: i64 = 0;
            for &d in digits {
                index = index * 10 + i64::from(d - u16::from(b'0'));
                if index > i64::from(i32::MAX) {
                    return Err(format!("For input string: \"{}\"", String::from_utf16_lossy(digits)));
                }
            }
            let groups = i64::try_from(group_count).unwrap_or(i64::MAX);
            while index > groups && index >= 10 {
                index /= 10;
            }
            if index > groups {
                let at = digits_start - 1;
                if at <= value.len() {
                    value.insert(at, u16::from(b'\\'));
                }
            }
        }
        i = j;
    }
    Ok(String::from_utf16_lossy(&value))
}

/// Java's `Matcher.replaceAll`: every match of `regex` in `text` replaced by
/// the expansion of `replacement`. After an empty match the search resumes
/// one character later; an empty match right after a non-empty one counts.
fn replace_all(regex: &Regex, text: &str, replacement: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut from = 0;
    while from <= text.len() {
        let Some(caps) = regex.captures_at(text, from) else {
            break;
        };
        let Some(m) = caps.get(0) else {
            break;
        };
        out.push_str(&text[copied..m.start()]);
        expand_replacement(regex, &caps, replacement, &mut out)?;
        copied = m.end();
        from = if m.start() == m.end() {
            match text[m.end()..].chars().next() {
                Some(c) => m.end() + c.len_utf8(),
                None => break,
            }
        } else {
            m.end()
        };
    }
    out.push_str(&text[copied..]);
    Ok(out)
}

/// Java's replacement syntax: `\x` is a literal `x`; `$n` is group `n`,
/// taking further digits while the number stays a valid group; `${name}` a
/// named group. A group that did not participate expands to nothing.
fn expand_replacement(regex: &Regex, caps: &Captures<'_>, replacement: &str, out: &mut String) -> Result<(), String> {
    let group_count = caps.len().saturating_sub(1);
    let chars: Vec<char> = replacement.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            i += 1;
            let Some(&escaped) = chars.get(i) else {
                return Err("character to be escaped is missing".to_string());
            };
            out.push(escaped);
            i += 1;
        } else if c == '$' {
            i += 1;
            let Some(&next) = chars.get(i) else {
                return Err("Illegal group reference: group index is missing".to_string());
            };
            if next == '{' {
                i += 1;
                let start = i;
                while i < chars.len() && chars[i].is_ascii_alphanumeric() {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                if name.is_empty() {
                    return Err("named capturing group has 0 length name".to_string());
                }
                if chars.get(i) != Some(&'}') {
                    return Err("named capturing group is missing trailing '}'".to_string());
                }
                if name.starts_with(|c: char| c.is_ascii_digit()) {
                    return Err(format!("capturing group name {{{name}}} starts with digit character"));
                }
                if !regex.capture_names().any(|n| n == Some(name.as_str())) {
                    return Err(format!("No group with name {{{name}}}"));
                }
                i += 1;
                if let Some(m) = caps.name(&name) {
                    out.push_str(m.as_str());
                }
            } else {
                let Some(first) = next.to_digit(10) else {
                    return Err("Illegal group reference".to_string());
                };
                let mut group = first as usize;
                i += 1;
                while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                    match group.checked_mul(10).and_then(|g| g.checked_add(d as usize)) {
                        Some(candidate) if candidate <= group_count => {
                            group = candidate;
                            i += 1;
                        }
                        _ => break,
                    }
                }
                if group > group_count {
                    return Err(format!("No group {group}"));
                }
                if let Some(m) = caps.get(group) {
                    out.push_str(m.as_str());
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_parse_and_display() {
        let p = KafkaPrincipal::parse("User:alice").unwrap();
        assert_eq!(p, KafkaPrincipal::user("alice"));
        assert_eq!(p.to_string(), "User:alice");
        let p: KafkaPrincipal = "User:CN=a,O=b:c".parse().unwrap();
        assert_eq!(p.principal_type, "User");
        assert_eq!(p.name, "CN=a,O=b:c");
        assert_eq!(KafkaPrincipal::parse("Group:").unwrap().name, "");
        assert!(KafkaPrincipal::parse("alice").is_err());
        assert!(KafkaPrincipal::parse("").is_err());
        assert_eq!(KafkaPrincipal::anonymous().to_string(), ANONYMOUS);
        assert!(KafkaPrincipal::parse(ANONYMOUS).unwrap().is_anonymous());
        assert!(!KafkaPrincipal::user("bob").is_anonymous());
    }

    fn mapper(rules: &str) -> SslPrincipalMapper {
        match SslPrincipalMapper::parse(rules) {
            Ok(m) => m,
            Err(e) => panic!("rules {rules:?} refused: {e}"),
        }
    }

    #[test]
    fn default_rule_returns_the_subject() {
        let dn = "CN=alice,OU=eng,O=Sluice Test,C=US";
        assert_eq!(mapper("DEFAULT").map(dn).unwrap(), dn);
        assert_eq!(SslPrincipalMapper::default().map(dn).unwrap(), dn);
        assert_eq!(mapper(DEFAULT_SSL_PRINCIPAL_MAPPING_RULES).to_string(), "SslPrincipalMapper(rules = [DEFAULT])");
    }

    #[test]
    fn rules_in_order_with_case_flags() {
        let m = mapper(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, \
             RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L, \
             RULE:^cn=(.*?),ou=(.*?),dc=(.*?),dc=(.*?)$/$1@$2/U, \
             RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U, \
             DEFAULT",
        );
        let name = |dn: &str| m.map(dn).unwrap();
        assert_eq!(name("CN=Duke,OU=ServiceUsers,O=Org,C=US"), "duke");
        assert_eq!(name("CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US"), "duke@sme");
        assert_eq!(name("cn=duke,ou=sme,dc=mycp,dc=com"), "DUKE@SME");
        assert_eq!(name("cN=duke,OU=JavaSoft,O=Sun Microsystems"), "DUKE");
        assert_eq!(name("OU=JavaSoft,O=Sun Microsystems,C=US"), "OU=JavaSoft,O=Sun Microsystems,C=US");
        let keep_case = mapper("RULE:^CN=([^,]*),.*$/$1/");
        assert_eq!(keep_case.map("CN=MixedCase,O=x").unwrap(), "MixedCase");
    }

    #[test]
    fn pattern_must_match_the_whole_subject() {
        let m = mapper("RULE:CN=([a-z]+)/$1/");
        assert_eq!(m.map("CN=abc").unwrap(), "abc");
        let err = m.map("CN=abc,O=x").unwrap_err();
        assert_eq!(err, "No rules apply to CN=abc,O=x, rules [RULE:CN=([a-z]+)/$1]");
        // An empty rule list maps nothing.
        assert!(mapper("").map("CN=a").is_err());
    }

    #[test]
    fn replacement_applies_to_every_match() {
        // The whole subject matches, but replacing goes match by match.
        let m = mapper("RULE:([a-z])/<$1>/");
        assert_eq!(m.map("q").unwrap(), "<q>");
        let m = mapper("RULE:(.*?)/x$1/");
        assert_eq!(m.map("abc").unwrap(), "xaxbxcx");
        // An empty match right after a non-empty one is replaced too.
        let m = mapper("RULE:[a-z]*/X/");
        assert_eq!(m.map("abc").unwrap(), "XX");
    }

    #[test]
    fn group_references_like_java() {
        // `$4` with three groups is a literal; `$12` with one group is `$1` then `2`.
        let m = mapper("RULE:^CN=(a)(b)(c)$/$3$2$1-$4/");
        assert_eq!(m.map("CN=abc").unwrap(), "cba-$4");
        let m = mapper("RULE:^CN=(x+)$/$12/");
        assert_eq!(m.map("CN=xx").unwrap(), "xx2");
        let m = mapper("RULE:^CN=(?<user>[a-z]+)$/${user}!/");
        assert_eq!(m.map("CN=bob").unwrap(), "bob!");
        // Escapes in the replacement, including an escaped slash.
        let m = mapper(r"RULE:^CN=(.*)$/\$\\$1\//");
        assert_eq!(m.map("CN=q").unwrap(), r"$\q/");
        // `$0` is the whole match.
        let m = mapper("RULE:^CN=(.*)$/[$0]/");
        assert_eq!(m.map("CN=q").unwrap(), "[CN=q]");
        // No groups: `$1` is not rewritten and fails when applied.
        let m = mapper("RULE:^CN=.*$/$1/");
        assert_eq!(m.map("CN=q").unwrap_err(), "No group 1");
        // Kafka's rewriting quirk: the second out-of-range reference is
        // rewritten one place early, leaving `$5` a real (missing) group.
        let m = mapper("RULE:^(a)(b)(c)$/$4$5/");
        assert_eq!(m.map("abc").unwrap_err(), "No group 5");
        assert!(mapper("RULE:^(a)$/x$/").map("a").is_err());
        assert!(mapper("RULE:^(a)$/$x/").map("a").is_err());
        assert!(mapper(r"RULE:^(a)$/x\\/").map("a").is_ok());
        assert!(mapper("RULE:^(a)$/${nope}/").map("a").is_err());
        assert!(mapper("RULE:^(a)$/$99999999999/").map("a").is_err());
    }

    #[test]
    fn comma_inside_pattern() {
        let m = mapper(r"RULE:^CN=((\\, *|\w)+)(,.*|$)/$1/,DEFAULT");
        assert_eq!(m.map(r"CN=Tkac\, Adam,OU=ITZ,DC=geodis,DC=cz").unwrap(), r"Tkac\, Adam");
    }

    #[test]
    fn valid_and_invalid_rule_lists() {
        for ok in [
            "DEFAULT",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, DEFAULT",
            "RULE:^cn=(.?),ou=(.?),dc=(.?),dc=(.?)$/$1@$2/U",
            "RULE:^CN=([^,ADEFLTU,]+)(,.*|$)/$1/",
            "RULE:^CN=([^,DEFAULT,]+)(,.*|$)/$1/",
        ] {
            assert!(SslPrincipalMapper::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "default",
            "DEFAUL",
            "DEFAULT/L",
            "DEFAULT/U",
            "RULE:CN=(.*?),OU=ServiceUsers.*/$1",
            "rule:^CN=(.*?),OU=ServiceUsers.*$/$1/",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L/U",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/L",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/U",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/LU",
            "RULE:(unclosed/x/",
        ] {
            assert!(SslPrincipalMapper::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            SslPrincipalMapper::parse("DEFAULT, DEFAULTX").unwrap_err(),
            "Invalid rule: `DEFAULTX`, unmatched substring: `X`"
        );
    }

    #[test]
    fn splitting_matches_kafka() {
        let cases = [
            ("", "[]"),
            ("DEFAULT", "[DEFAULT]"),
            ("RULE://", "[RULE:/]"),
            ("RULE:/.*/", "[RULE:/.*]"),
            ("RULE:/.*/L", "[RULE:/.*/L]"),
            ("RULE://,DEFAULT", "[RULE:/, DEFAULT]"),
            ("  RULE:// ,  DEFAULT  ", "[RULE:/, DEFAULT]"),
            ("  RULE:   /     / ,  DEFAULT  ", "[RULE:   /     , DEFAULT]"),
            ("  RULE:  /     /U   ,DEFAULT  ", "[RULE:  /     /U, DEFAULT]"),
            (
                "  RULE:([A-Z]*)/$1/U   ,RULE:([a-z]+)/$1/,   DEFAULT  ",
                "[RULE:([A-Z]*)/$1/U, RULE:([a-z]+)/$1, DEFAULT]",
            ),
            (",   , , ,      , , ,   ", "[]"),
            (",,RULE://,,,DEFAULT,,", "[RULE:/, DEFAULT]"),
            (",  , RULE: /   /    ,,,   DEFAULT, ,   ", "[RULE: /   , DEFAULT]"),
            ("     ,  , RULE:   /  /U    ,,  ,DEFAULT, ,", "[RULE:   /  /U, DEFAULT]"),
            (r"RULE:\/\\\(\)\n\t/\/\//", r"[RULE:\/\\\(\)\n\t/\/\/]"),
            (r"RULE:\**\/+/*/L,RULE:\/*\**/**/", r"[RULE:\**\/+/*/L, RULE:\/*\**/**]"),
            (
                r"RULE:,RULE:,/,RULE:,\//U,RULE:,/RULE:,/,RULE:,RULE:,/L,RULE:,/L,RULE:, DEFAULT, /DEFAULT/,DEFAULT",
                r"[RULE:,RULE:,/,RULE:,\//U, RULE:,/RULE:,, RULE:,RULE:,/L,RULE:,/L, RULE:, DEFAULT, /DEFAULT, DEFAULT]",
            ),
        ];
        for (rules, expected) in cases {
            assert_eq!(mapper(rules).to_string(), format!("SslPrincipalMapper(rules = {expected})"), "{rules:?}");
        }
    }

    #[test]
    fn arbitrary_rules_and_subjects_never_panic() {
        let pieces = [
            "RULE:", "DEFAULT", "/", "\\", ",", "$", "1", "0", "${", "}", "(", ")", ".*", "?", "L", "U", " ", "é",
            "\n", "CN=", "[a-z]", "+",
        ];
        let subjects = ["", "CN=a", "CN=é,O=x", "CN=a\\, b,OU=c", "\n", "$1"];
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut parsed = 0;
        for _ in 0..800 {
            let len = next(12);
            let rules: String = (0..len).map(|_| pieces[next(pieces.len())]).collect();
            if let Ok(m) = SslPrincipalMapper::parse(&rules) {
                parsed += 1;
                let shown = m.to_string();
                assert!(shown.starts_with("SslPrincipalMapper(rules = ["), "{shown}");
                for dn in subjects {
                    let _ = m.map(dn);
                }
            }
        }
        assert!(parsed > 30, "only {parsed} rule lists parsed");
    }

    #[test]
    fn value_escaping() {
        let esc = |v: &str| {
            let mut out = String::new();
            escape_value(v, &mut out);
            out
        };
        assert_eq!(esc("plain value"), "plain value");
        assert_eq!(esc(r#"a,b=c+d<e>f#g;h"i\j"#), r#"a\,b\=c\+d\<e\>f\#g\;h\"i\\j"#);
        assert_eq!(esc("#lead"), r"\#lead");
        assert_eq!(esc("  two "), r"\ \ two\ ");
        assert_eq!(esc("   "), r"\ \ \ ");
        assert_eq!(esc("\rx\r"), "\\\rx\\\r");
        assert_eq!(esc("nul\0"), r"nul\00");
        assert_eq!(esc("ünï 组"), "ünï 组");
        assert_eq!(esc(""), "");
    }

    #[test]
    fn oid_formatting() {
        assert_eq!(oid_to_dotted(&[0x55, 0x04, 0x03]), "2.5.4.3");
        assert_eq!(oid_to_dotted(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]), "1.2.840.113549.1.9.1");
        assert_eq!(
            oid_to_dotted(&[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19]),
            "0.9.2342.19200300.100.1.25"
        );
        // 2.25.<128-bit UUID>, an arc beyond u64.
        let mut content = vec![0x69];
        let big: u128 = 0x1234_5678_9abc_def0_1234_5678_9abc_def0;
        let mut groups = Vec::new();
        let mut v = big;
        while v > 0 {
            groups.push((v & 0x7f) as u8);
            v >>= 7;
        }
        for (i, g) in groups.iter().rev().enumerate() {
            content.push(if i + 1 == groups.len() { *g } else { g | 0x80 });
        }
        assert_eq!(oid_to_dotted(&content), format!("2.25.{big}"));
        // A first subidentifier beyond 80 belongs to arc 2.
        assert_eq!(oid_to_dotted(&[0x81, 0x34, 0x01]), "2.100.1");
    }

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if content.len() < 0x80 {
            out.push(content.len() as u8);
        } else {
            out.push(0x82);
            out.extend_from_slice(&(content.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(content);
        out
    }

    fn ava(oid: &[u8], tag: u8, value: &[u8]) -> Vec<u8> {
        let mut body = tlv(0x06, oid);
        body.extend(tlv(tag, value));
        tlv(0x30, &body)
    }

    fn name_der(rdns: &[Vec<Vec<u8>>]) -> Vec<u8> {
        let mut seq = Vec::new();
        for rdn in rdns {
            seq.extend(tlv(0x31, &rdn.concat()));
        }
        tlv(0x30, &seq)
    }

    fn format_name(der: &[u8]) -> String {
        use x509_parser::prelude::FromDer;
        let (rest, name) = X509Name::from_der(der).expect("test name parses");
        assert!(rest.is_empty());
        rfc2253_name(&name)
    }

    const CN: &[u8] = &[0x55, 0x04, 0x03];
    const OU: &[u8] = &[0x55, 0x04, 0x0b];
    const O: &[u8] = &[0x55, 0x04, 0x0a];
    const C: &[u8] = &[0x55, 0x04, 0x06];
    const DC: &[u8] = &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19];
    const UID: &[u8] = &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01];
    const EMAIL: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];
    const SERIAL: &[u8] = &[0x55, 0x04, 0x05];

    #[test]
    fn name_formatting_order_keywords_and_hex() {
        let der = name_der(&[
            vec![ava(DC, 0x16, b"com")],
            vec![ava(DC, 0x16, b"example")],
            vec![ava(O, 0x13, b"Acme, Inc.")],
            vec![ava(OU, 0x0c, b"a+b"), ava(UID, 0x0c, b"u1")],
            vec![ava(SERIAL, 0x13, b"42")],
            vec![ava(EMAIL, 0x16, b"a@b.c")],
            vec![ava(CN, 0x0c, " Ünïcødé ".as_bytes())],
        ]);
        assert_eq!(
            format_name(&der),
            "CN=\\ Ünïcødé\\ ,\
             1.2.840.113549.1.9.1=#16056140622e63,\
             2.5.4.5=#13023432,\
             OU=a\\+b+UID=u1,\
             O=Acme\\, Inc.,\
             DC=example,DC=com"
        );
        // A keyword attribute with a non-string value is printed in hex.
        let der = name_der(&[vec![ava(C, 0x04, &[0x01, 0x02])]]);
        assert_eq!(format_name(&der), "C=#04020102");
        // An empty name is the empty string.
        assert_eq!(format_name(&name_der(&[])), "");
    }

    #[test]
    fn subject_of_a_generated_certificate() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "US");
        dn.push(rcgen::DnType::OrganizationName, "Sluice Test");
        dn.push(rcgen::DnType::OrganizationalUnitName, "eng");
        dn.push(rcgen::DnType::CommonName, "alice");
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let der: &[u8] = cert.der();

        let subject = subject_dn(der).unwrap();
        assert_eq!(subject, "CN=alice,OU=eng,O=Sluice Test,C=US");

        assert_eq!(
            SslPrincipalMapper::default().principal_for_certificate(der).unwrap().to_string(),
            "User:CN=alice,OU=eng,O=Sluice Test,C=US"
        );
        let m = mapper("RULE:^CN=([^,]+),OU=eng,.*$/$1/U");
        assert_eq!(m.principal_for_certificate(der).unwrap(), KafkaPrincipal::user("ALICE"));
        let m = mapper("RULE:^CN=([^,]+),OU=ops,.*$/$1/");
        assert!(m.principal_for_certificate(der).is_err());
    }

    #[test]
    fn certificate_string_types_and_escapes() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::OrganizationName, rcgen::DnValue::PrintableString("Org=1".try_into().unwrap()));
        dn.push(
            rcgen::DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
            rcgen::DnValue::Ia5String("x@y".try_into().unwrap()),
        );
        dn.push(rcgen::DnType::CommonName, "#svc; \"quoted\" <x> ");
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            subject_dn(cert.der()).unwrap(),
            r#"CN=\#svc\; \"quoted\" \<x\>\ ,1.2.840.113549.1.9.1=#1603784079,O=Org\=1"#
        );
    }

    #[test]
    fn garbage_certificates_are_errors() {
        assert!(subject_dn(&[]).is_err());
        assert!(subject_dn(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_err());
        assert!(subject_dn(&[0xff; 64]).is_err());
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let der: &[u8] = cert.der();
        for len in [0, 1, 10, der.len() / 2, der.len() - 1] {
            assert!(subject_dn(&der[..len]).is_err(), "truncated to {len}");
        }
    }
}
