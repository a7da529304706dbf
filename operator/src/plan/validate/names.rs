//! Syntax checks for the names and values Kubernetes and the SQL engines accept: DNS-1123
//! labels and subdomains, label keys and values, resource quantities, database identifiers.
//!
//! Each function returns `None` when the value is fine, else the reason in words (the message
//! of a [`FieldError`](super::FieldError)).

/// The longest DNS-1123 label (RFC 1123): 63 characters.
pub const DNS1123_LABEL_MAX: usize = 63;
/// The longest DNS-1123 subdomain: 253 characters.
pub const DNS1123_SUBDOMAIN_MAX: usize = 253;
/// The longest label value (and the name part of a label key): 63 characters.
pub const LABEL_VALUE_MAX: usize = 63;

fn is_lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// Whether `s` is one DNS label part: lowercase letters, digits and `-`, starting and ending
/// with a letter or digit (length is checked by the callers).
fn is_label_part(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| is_lower_alnum(c) || c == '-')
        && s.starts_with(is_lower_alnum)
        && s.ends_with(is_lower_alnum)
}

/// Checks a DNS-1123 label (container names, namespaces, store names, Job names).
pub fn dns1123_label(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("is empty".into());
    }
    if s.len() > DNS1123_LABEL_MAX {
        return Some(format!("{s:?} is longer than {DNS1123_LABEL_MAX} characters"));
    }
    if !is_label_part(s) {
        return Some(format!(
            "{s:?} is not a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit)"
        ));
    }
    None
}

/// Checks a DNS-1123 subdomain (names of PVCs, Secrets, workloads and most other objects).
pub fn dns1123_subdomain(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("is empty".into());
    }
    if s.len() > DNS1123_SUBDOMAIN_MAX {
        return Some(format!("{s:?} is longer than {DNS1123_SUBDOMAIN_MAX} characters"));
    }
    if !s.split('.').all(is_label_part) {
        return Some(format!(
            "{s:?} is not a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit)"
        ));
    }
    None
}

/// The access modes a PVC may ask for.
pub const ACCESS_MODES: [&str; 4] = ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"];

/// Checks a PVC's list of access modes: each one of [`ACCESS_MODES`], none twice.
pub fn access_modes(modes: &[String]) -> Option<String> {
    if let Some(bad) = modes.iter().find(|m| !ACCESS_MODES.contains(&m.as_str())) {
        return Some(format!("{bad:?} is not an access mode (one of {})", ACCESS_MODES.join(", ")));
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(twice) = modes.iter().find(|m| !seen.insert(m.as_str())) {
        return Some(format!("{twice:?} is listed twice"));
    }
    None
}

/// Whether `s` is a label value: at most 63 characters of letters, digits, `-`, `_` and `.`,
/// starting and ending with a letter or digit; empty is allowed.
fn is_label_value(s: &str) -> bool {
    s.is_empty()
        || (s.len() <= LABEL_VALUE_MAX
            && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// Checks a label value (`metav1.LabelSelector` values and the values of `matchLabels`).
pub fn label_value(s: &str) -> Option<String> {
    (!is_label_value(s)).then(|| {
        format!(
            "{s:?} is not a valid label value (at most {LABEL_VALUE_MAX} letters, digits, '-', '_' and '.', starting and ending with a letter or digit)"
        )
    })
}

/// Checks a label key: an optional DNS-1123 subdomain prefix and `/`, then a name of at most
/// 63 letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit.
pub fn label_key(s: &str) -> Option<String> {
    let (prefix, name) = match s.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, s),
    };
    if let Some(reason) = prefix.and_then(dns1123_subdomain) {
        return Some(format!("the prefix of label key {s:?}: {reason}"));
    }
    if name.is_empty() || !is_label_value(name) {
        return Some(format!(
            "{s:?} is not a valid label key (an optional DNS subdomain and '/', then at most {LABEL_VALUE_MAX} letters, digits, '-', '_' and '.', starting and ending with a letter or digit)"
        ));
    }
    None
}

/// Checks a Kubernetes resource quantity that must be positive, such as a PVC size (`10Gi`,
/// `500M`, `1e9`). Grammar of `resource.Quantity`: a decimal number (optional sign, digits,
/// optional fraction) followed by a binary suffix (`Ki` .. `Ei`), a decimal suffix (`m`, `k`,
/// `M` .. `E`) or an exponent (`e3`, `E-2`).
pub fn positive_quantity(s: &str) -> Option<String> {
    let bad = || Some(format!("{s:?} is not a Kubernetes quantity (for example 10Gi or 500M)"));
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_len);
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if frac.contains('.') || (int.is_empty() && frac.is_empty()) {
        return bad();
    }
    let suffix_ok = match suffix {
        "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" | "m" | "k" | "M" | "G" | "T" | "P" | "E" => true,
        _ => match suffix.strip_prefix(['e', 'E']) {
            Some(exp) => {
                let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
                !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
            }
            None => false,
        },
    };
    if !suffix_ok {
        return bad();
    }
    if negative || number.chars().all(|c| c == '0' || c == '.') {
        return Some(format!("{s:?} must be greater than zero"));
    }
    None
}

/// The longest identifier PostgreSQL keeps (MySQL allows 64): 63 bytes.
pub const SQL_IDENTIFIER_MAX: usize = 63;

fn is_sql_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Checks an SQL database name (a policy's `sql.database`, and the database a restore
/// creates) against [`SQL_DATABASE_PATTERN`](crate::api::SQL_DATABASE_PATTERN):
/// `^[A-Za-z_][A-Za-z0-9_]{0,62}$`, an ASCII letter or `_`, then letters, digits and `_`, at
/// most 63 bytes.
///
/// Such a name means the same to PostgreSQL and MySQL, needs no quoting in either, and cannot
/// end a string or an identifier, add a statement, or (for `pg_restore -d`) be read as a
/// connection string: no quote, backtick, `;`, `=`, space or `-`. The restore scripts still
/// pass it as an argument or a bound variable wherever they can.
pub fn sql_database(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("is empty".into());
    }
    if s.len() > SQL_IDENTIFIER_MAX {
        return Some(format!("{s:?} is longer than {SQL_IDENTIFIER_MAX} characters"));
    }
    let starts_well = s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
    if !starts_well || !s.chars().all(is_sql_word_char) {
        return Some(format!(
            "{s:?} is not a safe database name (an ASCII letter or '_', then letters, digits and '_'; pattern {})",
            crate::api::SQL_DATABASE_PATTERN
        ));
    }
    None
}

/// Checks a part appended to a database name (`sqlTarget.databaseSuffix`) against
/// [`DATABASE_SUFFIX_PATTERN`](crate::api::DATABASE_SUFFIX_PATTERN): 1 to 62 ASCII
/// letters, digits and `_`, so that any valid database name plus the suffix is again made of
/// [`sql_database`]'s characters (its length is checked once the database is known).
pub fn sql_identifier_part(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("is empty".into());
    }
    let max = SQL_IDENTIFIER_MAX - 1;
    if s.len() > max {
        return Some(format!("{s:?} is longer than {max} characters"));
    }
    if !s.chars().all(is_sql_word_char) {
        return Some(format!(
            "{s:?} may only hold letters, digits and '_' (it becomes part of a database name; pattern {})",
            crate::api::DATABASE_SUFFIX_PATTERN
        ));
    }
    None
}

/// Checks a host name or IP address (of an SQL server): not empty, no spaces, not a URL.
pub fn host(s: &str) -> Option<String> {
    if s.trim().is_empty() {
        Some("is empty".into())
    } else if s.contains("://") || s.contains('/') {
        Some(format!("{s:?} must be a host name or IP address, not a URL"))
    } else if s.chars().any(|c| c.is_whitespace()) {
        Some(format!("{s:?} must be a host name or IP address (it holds whitespace)"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        let long_label = "a".repeat(64);
        let cases: [(&str, bool, bool); 12] = [
            // (input, is a label, is a subdomain)
            ("mailstore", true, true),
            ("store-2024", true, true),
            ("a", true, true),
            ("0abc", true, true),
            ("mail.example", false, true),
            ("", false, false),
            ("-a", false, false),
            ("a-", false, false),
            ("Mail", false, false),
            ("a_b", false, false),
            ("a..b", false, false),
            (&long_label, false, true),
        ];
        for (input, label, subdomain) in cases {
            assert_eq!(dns1123_label(input).is_none(), label, "label {input:?}");
            assert_eq!(dns1123_subdomain(input).is_none(), subdomain, "subdomain {input:?}");
        }
        assert!(dns1123_subdomain(&"a".repeat(254)).is_some());
    }

    #[test]
    fn labels() {
        let cases = [
            ("app", true, true),
            ("app.kubernetes.io/name", true, false),
            ("", false, true),
            ("a_b.C-d", true, true),
            ("/x", false, false),
            ("Example.com/x", false, false),
            ("x/", false, false),
            ("-a", false, false),
        ];
        for (input, key, value) in cases {
            assert_eq!(label_key(input).is_none(), key, "key {input:?}");
            assert_eq!(label_value(input).is_none(), value, "value {input:?}");
        }
    }

    #[test]
    fn quantities() {
        let good = ["10Gi", "1", "500M", "1.5Gi", ".5Ti", "1e9", "1E+3", "+2k", "100m", "5."];
        for q in good {
            assert_eq!(positive_quantity(q), None, "{q}");
        }
        let bad = ["", "Gi", "10GB", "10 Gi", "1.2.3", "ten", "1e", "10gi", "0", "0Gi", "-1Gi", "0.0"];
        for q in bad {
            assert!(positive_quantity(q).is_some(), "{q}");
        }
    }

    #[test]
    fn sql_identifiers_and_hosts() {
        // (input, a database name, a database suffix)
        let long = "a".repeat(63);
        let too_long = "a".repeat(64);
        let cases: [(&str, bool, bool); 16] = [
            ("meta", true, true),
            ("_restored", true, true),
            ("R2", true, true),
            ("Archive_Meta_2024", true, true),
            ("2024", false, true),
            (&long, true, false),
            (&too_long, false, false),
            ("", false, false),
            ("-restored", false, false),
            ("archive-meta", false, false),
            ("a b", false, false),
            ("x;drop", false, false),
            ("x'; DROP DATABASE y; --", false, false),
            ("x`; DROP DATABASE y; --", false, false),
            ("dbname=postgres", false, false),
            ("caf\u{e9}", false, false),
        ];
        for (input, database, suffix) in cases {
            assert_eq!(sql_database(input).is_none(), database, "database {input:?}: {:?}", sql_database(input));
            assert_eq!(sql_identifier_part(input).is_none(), suffix, "suffix {input:?}: {:?}", sql_identifier_part(input));
        }
        for good in ["db", "postgres.mail.svc", "10.0.0.7", "[::1]"] {
            assert_eq!(host(good), None, "{good}");
        }
        for bad in ["", " ", "postgres://db", "db host", "db/x"] {
            assert!(host(bad).is_some(), "{bad}");
        }
    }

    /// The hand-written checks and the CRD schema patterns accept the same values (the API
    /// server enforces the patterns; the operator and `archivist validate` the checks).
    #[test]
    fn checks_agree_with_the_schema_patterns() {
        use crate::api::{DATABASE_SUFFIX_PATTERN, DNS_LABEL_PATTERN, NAME_SUFFIX_PATTERN, SQL_DATABASE_PATTERN};
        let inputs = [
            "", "a", "A", "_", "0", "meta", "_restored", "Meta_2", "2024", "-r", "-r-1", "r-", "-", "a-b", "a_b",
            "a.b", "a b", "x'", "x`", "x\"", "x;y", "caf\u{e9}", "UPPER", "-sbs", "restored2",
        ];
        let long_63 = "a".repeat(63);
        let long_64 = "a".repeat(64);
        let label = |s: &str| dns1123_label(s).is_none();
        let suffix_shape = |s: &str| {
            s.is_empty() || (s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') && s.ends_with(|c: char| c.is_ascii_alphanumeric()))
        };
        type Check<'a> = (&'a str, &'a dyn Fn(&str) -> bool);
        let pairs: [Check<'_>; 4] = [
            (SQL_DATABASE_PATTERN, &|s| sql_database(s).is_none()),
            (DATABASE_SUFFIX_PATTERN, &|s| sql_identifier_part(s).is_none()),
            (DNS_LABEL_PATTERN, &label),
            (NAME_SUFFIX_PATTERN, &suffix_shape),
        ];
        for (pattern, check) in pairs {
            let re = regex::Regex::new(pattern).expect("pattern compiles");
            for input in inputs.iter().copied().chain([long_63.as_str(), long_64.as_str()]) {
                // DNS labels: the schema adds maxLength 63 to the pattern.
                let schema = re.is_match(input) && (pattern != DNS_LABEL_PATTERN || input.len() <= 63);
                assert_eq!(schema, check(input), "{pattern} on {input:?}");
            }
        }
    }
}
