//! Text that people read on someone else's screen: names of devices and
//! applications. Beside control characters, Unicode has invisible
//! formatting characters that change how the text around them looks: bidi
//! overrides and isolates can make "moc.knab" read as "bank.com", zero-width
//! characters make two names that look alike differ. Neither belongs in a
//! name shown to decide whom to trust.

/// The first character of `text` that a displayed name must not contain, if
/// any: control characters, bidi controls, zero-width and other invisible
/// format characters (Unicode category Cf), and tag characters.
pub fn hidden_character(text: &str) -> Option<char> {
    text.chars().find(|&c| is_hidden(c))
}

fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}'                  // soft hyphen
            | '\u{061C}'                // Arabic letter mark
            | '\u{115F}' | '\u{1160}'   // Hangul fillers
            | '\u{180E}'                // Mongolian vowel separator
            | '\u{200B}'..='\u{200F}'   // zero-width space, (non-)joiner, LRM, RLM
            | '\u{202A}'..='\u{202E}'   // bidi embeddings and overrides
            | '\u{2060}'..='\u{2064}'   // word joiner, invisible operators
            | '\u{2066}'..='\u{206F}'   // bidi isolates, deprecated format characters
            | '\u{3164}'                // Hangul filler
            | '\u{FEFF}'                // zero-width no-break space (BOM)
            | '\u{FFA0}'                // halfwidth Hangul filler
            | '\u{FFF9}'..='\u{FFFB}'   // interlinear annotation
            | '\u{E0000}'..='\u{E007F}' // tags
        )
}

/// `U+202E` for messages that name the character (it cannot be shown).
pub fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_and_direction_changing_characters_are_found() {
        for (text, found) in [
            ("Bank\u{202E}moc.", '\u{202E}'),
            ("Pay\u{2066}roll", '\u{2066}'),
            ("Ali\u{200B}ce", '\u{200B}'),
            ("\u{FEFF}Laptop", '\u{FEFF}'),
            ("tab\there", '\t'),
            ("tag\u{E0041}", '\u{E0041}'),
        ] {
            assert_eq!(hidden_character(text), Some(found), "{text:?}");
        }
        for fine in [
            "Müller GmbH",
            "ThinkPad of Zoë",
            "銀行アプリ",
            "بنك",
            "Alice's phone (Android 15)",
        ] {
            assert_eq!(hidden_character(fine), None, "{fine}");
        }
        assert_eq!(code_point('\u{202E}'), "U+202E");
    }
}
