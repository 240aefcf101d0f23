//! Reading a signed webhook's payload: what is wrong with one that does not
//! fit is said by the field's path, never by its value (payloads hold names
//! and addresses, and the reason is stored, listed and logged).

use serde::de::DeserializeOwned;

/// `body` as `T`, or why not: `payload does not match the <what> shape at
/// <path>: <problem>`, with any string value the parser quoted left out.
pub fn parse<T: DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, String> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let problem = without_strings(&e.into_inner().to_string());
        format!("payload does not match the {what} shape at {path}: {problem}")
    })
}

/// `message` with every `string "…"` the parser quoted as `a string`.
fn without_strings(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("string \"") {
        out.push_str(&rest[..at]);
        out.push_str("a string");
        let quoted = &rest[at + "string \"".len()..];
        // The closing quote is the first one not escaped by a backslash.
        let mut escaped = false;
        let end = quoted
            .char_indices()
            .find(|&(_, c)| {
                let closing = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                closing
            })
            .map_or(quoted.len(), |(i, _)| i + 1);
        rest = &quoted[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Order {
        id: u64,
        line_items: Vec<Line>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Line {
        quantity: i64,
    }

    #[test]
    fn a_bad_field_is_named_by_its_path_and_its_value_is_not_repeated() {
        let body = br#"{"id": 1, "line_items": [{"quantity": "Ada \"The\" Lovelace, 1 Main St"}]}"#;
        let reason = parse::<Order>("orders/create", body).unwrap_err();
        assert!(reason.contains("line_items[0].quantity"), "{reason}");
        assert!(reason.contains("a string"), "{reason}");
        assert!(!reason.contains("Ada"), "{reason}");
        assert!(!reason.contains("Main St"), "{reason}");
        let missing = parse::<Order>("orders/create", br#"{"line_items": []}"#).unwrap_err();
        assert!(missing.contains("missing field `id`"), "{missing}");
    }
}
