//! Amounts of money written the way the user's locale writes them.
//!
//! The amount stays exact: it is read from its decimal digits and printed
//! from them, never through a float. Digit grouping and the decimal mark
//! come from `num-format` (CLDR data, including Indian lakh grouping), the
//! currency's symbol and minor-unit digits from `iso_currency` (ISO 4217).
//! Only where the symbol goes is decided here ([`SymbolPlacement`]).

use std::{collections::HashMap, sync::OnceLock};

use iso_currency::{Currency, IntoEnumIterator};
use num_format::{Locale, ToFormattedString};
use serde_json::Value;

/// What amounts are written in when the locale is unknown.
pub const DEFAULT_LOCALE: &str = "en-US";

/// Keeps a number and its currency on one line.
const NO_BREAK_SPACE: char = '\u{a0}';

/// The integer digits an amount may have: enough for any real payment and
/// always within `u128`.
const MAX_INTEGER_DIGITS: usize = 30;

/// `serde_json` reads a JSON number with a fraction into an `f64`, whose
/// shortest form is the number the server wrote only while that has at
/// most this many significant digits.
const EXACT_FLOAT_DIGITS: usize = 15;

/// The system's locale as a BCP 47 tag (`de-DE`), or [`DEFAULT_LOCALE`].
pub fn system_locale() -> String {
    sys_locale::get_locale().unwrap_or_else(|| DEFAULT_LOCALE.to_string())
}

/// Why an amount cannot be shown with confidence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("the amount is not a plain non-negative decimal number")]
    NotADecimal,
    #[error("the amount has more fraction digits than {currency} has ({allowed})")]
    TooManyFractionDigits { currency: String, allowed: u16 },
    #[error("the currency is not a three-letter code")]
    NotACurrencyCode,
}

/// An exact, non-negative amount in a currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money {
    whole_units: u128,
    /// The fraction digits as written (`5` of `4200.5`).
    fraction_digits: String,
    /// Upper-case three-letter code, known to ISO 4217 or not.
    code: String,
    currency: Option<Currency>,
}

impl Money {
    /// Reads `amount` (a decimal string such as `"4200.00"`, or a JSON
    /// number) in `currency` (an ISO 4217 code). Refuses anything it could
    /// misread: signs, exponents, grouping, or more fraction digits than
    /// the currency has.
    pub fn parse(amount: &Value, currency: &str) -> Result<Self, MoneyError> {
        let code = currency.trim();
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(MoneyError::NotACurrencyCode);
        }
        let code = code.to_ascii_uppercase();
        let currency = Currency::from_code(&code);

        let text = decimal_text(amount)?;
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) => (whole, fraction),
            None => (text.as_str(), ""),
        };
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        let whole_ok = !whole.is_empty()
            && all_digits(whole)
            && whole.trim_start_matches('0').len() <= MAX_INTEGER_DIGITS;
        let fraction_ok = all_digits(fraction) && (!fraction.is_empty() || !text.contains('.'));
        if !whole_ok || !fraction_ok {
            return Err(MoneyError::NotADecimal);
        }
        let whole_units = whole.parse::<u128>().map_err(|_| MoneyError::NotADecimal)?;
        if let Some(allowed) = currency.and_then(|c| c.exponent()) {
            if fraction.len() > usize::from(allowed) {
                return Err(MoneyError::TooManyFractionDigits {
                    currency: code,
                    allowed,
                });
            }
        }
        Ok(Self {
            whole_units,
            fraction_digits: fraction.to_string(),
            code,
            currency,
        })
    }

    /// The ISO 4217 code, upper case.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The amount as `locale` writes it: `€4,200.00` (en-US),
    /// `4.200,00 €` (de-DE), `₹4,20,000.00` (en-IN). A symbol that several
    /// currencies share is followed by the code, `$1,000.00 (USD)`, since
    /// the reader may not assume the right dollar. A currency without a
    /// symbol is written with its code: `4,200.00 XYZ`.
    pub fn format(&self, locale: &str) -> String {
        let style = LocaleStyle::resolve(locale);
        let mut number = self.whole_units.to_formatted_string(&style.numbers);
        let fraction = self.padded_fraction();
        if !fraction.is_empty() {
            number.push_str(style.numbers.decimal());
            number.push_str(&fraction);
        }
        match self.symbol() {
            None => format!("{number}{NO_BREAK_SPACE}{}", self.code),
            Some(symbol) if is_shared_symbol(symbol) => {
                format!("{} ({})", style.placement.place(symbol, &number), self.code)
            }
            Some(symbol) => style.placement.place(symbol, &number),
        }
    }

    /// The fraction with the currency's minor-unit digits (`4200.5` EUR is
    /// `4200.50`); as written where the currency has none defined.
    fn padded_fraction(&self) -> String {
        let minor_digits = self
            .currency
            .and_then(|c| c.exponent())
            .map_or(0, usize::from);
        format!("{:0<minor_digits$}", self.fraction_digits)
    }

    /// The currency's own symbol; `None` where ISO data has only the
    /// generic sign `¤` (or nothing), which says less than the code.
    fn symbol(&self) -> Option<&'static str> {
        let symbol = symbol_of(self.currency?);
        (!symbol.is_empty() && symbol != "\u{a4}").then_some(symbol)
    }
}

/// The amount's digits: a string as written, a JSON number as
/// `serde_json` kept it.
fn decimal_text(amount: &Value) -> Result<String, MoneyError> {
    match amount {
        Value::String(text) => Ok(text.trim().to_string()),
        Value::Number(number) if number.is_u64() => Ok(number.to_string()),
        Value::Number(number) => {
            let text = number.to_string();
            let significant = text
                .bytes()
                .filter(u8::is_ascii_digit)
                .skip_while(|b| *b == b'0')
                .count();
            if significant > EXACT_FLOAT_DIGITS {
                return Err(MoneyError::NotADecimal);
            }
            Ok(text)
        }
        _ => Err(MoneyError::NotADecimal),
    }
}

/// The symbol of every ISO 4217 currency and how many current currencies
/// use each, read once: `iso_currency` builds a new `String` per call.
struct SymbolTable {
    by_currency: HashMap<Currency, String>,
    currencies_using: HashMap<String, usize>,
}

fn symbol_table() -> &'static SymbolTable {
    static TABLE: OnceLock<SymbolTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let by_currency: HashMap<Currency, String> =
            Currency::iter().map(|c| (c, c.symbol().symbol)).collect();
        let mut currencies_using = HashMap::new();
        for (currency, symbol) in &by_currency {
            if currency.is_superseded().is_none() {
                *currencies_using.entry(symbol.clone()).or_insert(0) += 1;
            }
        }
        SymbolTable {
            by_currency,
            currencies_using,
        }
    })
}

fn symbol_of(currency: Currency) -> &'static str {
    symbol_table()
        .by_currency
        .get(&currency)
        .map_or("", String::as_str)
}

/// Whether more than one current currency is written with `symbol` (`$`,
/// `£`, `¥`, `kr`, ...).
fn is_shared_symbol(symbol: &str) -> bool {
    symbol_table()
        .currencies_using
        .get(symbol)
        .is_some_and(|count| *count > 1)
}

/// How one locale writes an amount.
struct LocaleStyle {
    numbers: Locale,
    placement: SymbolPlacement,
}

impl LocaleStyle {
    /// Reads a BCP 47 tag, also in POSIX spelling (`de_DE.UTF-8`). The
    /// number format is the most specific one `num-format` knows
    /// (`de-CH`, then `de`); a language it does not know means en-US.
    fn resolve(tag: &str) -> Self {
        let tag = tag.split(['.', '@']).next().unwrap_or_default();
        let mut subtags = tag.split(['-', '_']).filter(|s| !s.is_empty());
        let language = subtags.next().unwrap_or_default().to_ascii_lowercase();
        let mut script = None;
        let mut region = None;
        for subtag in subtags {
            let letters = subtag.bytes().all(|b| b.is_ascii_alphabetic());
            let digits = subtag.bytes().all(|b| b.is_ascii_digit());
            if subtag.len() == 4 && letters && script.is_none() && region.is_none() {
                let mut title = subtag.to_ascii_lowercase();
                title[..1].make_ascii_uppercase();
                script = Some(title);
            } else if (subtag.len() == 2 && letters || subtag.len() == 3 && digits)
                && region.is_none()
            {
                region = Some(subtag.to_ascii_uppercase());
            }
        }
        let candidates = [
            script
                .as_ref()
                .zip(region.as_ref())
                .map(|(s, r)| format!("{language}-{s}-{r}")),
            script.as_ref().map(|s| format!("{language}-{s}")),
            region.as_ref().map(|r| format!("{language}-{r}")),
            Some(language.clone()),
        ];
        let known = (!language.is_empty())
            .then(|| {
                candidates
                    .iter()
                    .flatten()
                    .find_map(|name| Locale::from_name(name).ok())
            })
            .flatten();
        match known {
            Some(numbers) => Self {
                numbers,
                placement: SymbolPlacement::for_locale(&language, region.as_deref()),
            },
            None => Self {
                numbers: Locale::en,
                placement: SymbolPlacement::Before,
            },
        }
    }
}

/// Where the currency symbol goes, after CLDR's standard currency patterns
/// (`numbers/currencyFormats/standard` per locale): `¤#,##0.00`,
/// `¤ #,##0.00` or `#,##0.00 ¤`, the space a no-break one. `num-format`
/// has no such data, so this is the small subset the app needs, by
/// language with the few regions that differ; every other locale puts the
/// symbol first, as English does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SymbolPlacement {
    /// `€4,200.00` (en, ja, zh, ...).
    Before,
    /// `€ 4.200,00` (nl, de-AT, de-CH, pt-BR).
    BeforeWithSpace,
    /// `4.200,00 €` (de, fr, es, it, pl, sv, fi, cs, ...).
    After,
}

impl SymbolPlacement {
    fn for_locale(language: &str, region: Option<&str>) -> Self {
        const SYMBOL_AFTER: &[&str] = &[
            "bg", "ca", "cs", "da", "de", "el", "es", "et", "fi", "fr", "hr", "hu", "is", "it",
            "lt", "lv", "pl", "ro", "ru", "sk", "sl", "sr", "sv", "uk", "vi",
        ];
        match (language, region) {
            ("de", Some("AT" | "CH" | "LI")) | ("nl", _) => Self::BeforeWithSpace,
            ("pt", Some("PT")) => Self::After,
            ("pt", _) => Self::BeforeWithSpace,
            // Spanish outside Spain (es-MX, es-US, es-419...) writes `$1,234.56`.
            ("es", Some(region)) if region != "ES" => Self::Before,
            (language, _) if SYMBOL_AFTER.contains(&language) => Self::After,
            _ => Self::Before,
        }
    }

    fn place(self, symbol: &str, number: &str) -> String {
        match self {
            // CLDR's currency spacing: a symbol ending in a letter (`kr`,
            // `Bs.` does not) is kept apart from the digits.
            Self::Before if symbol.ends_with(char::is_alphabetic) => {
                format!("{symbol}{NO_BREAK_SPACE}{number}")
            }
            Self::Before => format!("{symbol}{number}"),
            Self::BeforeWithSpace => format!("{symbol}{NO_BREAK_SPACE}{number}"),
            Self::After => format!("{number}{NO_BREAK_SPACE}{symbol}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn money(amount: Value, currency: &str) -> Money {
        Money::parse(&amount, currency).expect("a valid amount")
    }

    #[test]
    fn euros_follow_the_locale() {
        let euros = money(json!("4200.00"), "EUR");
        assert_eq!(euros.format("en-US"), "€4,200.00");
        assert_eq!(euros.format("de-DE"), "4.200,00\u{a0}€");
        assert_eq!(euros.format("fr-FR"), "4\u{202f}200,00\u{a0}€");
        assert_eq!(euros.format("nl-NL"), "€\u{a0}4.200,00");
        assert_eq!(euros.format("de-CH"), "€\u{a0}4’200.00");
        assert_eq!(euros.format("de_DE.UTF-8"), "4.200,00\u{a0}€");
    }

    #[test]
    fn indian_english_groups_in_lakhs() {
        assert_eq!(
            money(json!("420000"), "INR").format("en-IN"),
            "₹4,20,000.00"
        );
    }

    #[test]
    fn unknown_locales_write_like_en_us() {
        let euros = money(json!("4200.5"), "eur");
        assert_eq!(euros.format("xx-YY"), "€4,200.50");
        assert_eq!(euros.format(""), "€4,200.50");
        assert_eq!(euros.format("C"), "€4,200.50");
    }

    #[test]
    fn shared_symbols_name_the_currency() {
        assert_eq!(
            money(json!("1000"), "USD").format("en-US"),
            "$1,000.00 (USD)"
        );
        assert_eq!(
            money(json!("1000"), "USD").format("de-DE"),
            "1.000,00\u{a0}$ (USD)"
        );
        assert_eq!(
            money(json!("99.5"), "SEK").format("en-US"),
            "kr\u{a0}99.50 (SEK)"
        );
    }

    #[test]
    fn yen_has_no_fraction() {
        assert_eq!(
            money(json!("150000"), "JPY").format("ja-JP"),
            "¥150,000 (JPY)"
        );
        assert_eq!(
            money(json!(150000), "JPY").format("en-US"),
            "¥150,000 (JPY)"
        );
        assert!(matches!(
            Money::parse(&json!("150000.5"), "JPY"),
            Err(MoneyError::TooManyFractionDigits { allowed: 0, .. })
        ));
    }

    #[test]
    fn unknown_currencies_are_written_with_their_code() {
        assert_eq!(
            money(json!("4200.00"), "XYZ").format("en-US"),
            "4,200.00\u{a0}XYZ"
        );
        // Gold has no symbol nor minor unit in ISO 4217.
        assert_eq!(money(json!("1.5"), "XAU").format("de-DE"), "1,5\u{a0}XAU");
    }

    #[test]
    fn json_numbers_are_read_when_exact() {
        assert_eq!(money(json!(4200), "EUR").format("en-US"), "€4,200.00");
        assert_eq!(money(json!(4200.5), "EUR").format("en-US"), "€4,200.50");
        assert_eq!(
            Money::parse(&json!(12345678901234567.0), "EUR"),
            Err(MoneyError::NotADecimal)
        );
    }

    #[test]
    fn doubtful_amounts_are_refused() {
        for amount in [
            json!("12,5"),
            json!("abc"),
            json!("-5.00"),
            json!(-5),
            json!("+5"),
            json!("1e3"),
            json!("1.000,00"),
            json!("5."),
            json!(".5"),
            json!(""),
            json!(null),
            json!(true),
            json!("1234567890123456789012345678901"),
        ] {
            assert_eq!(
                Money::parse(&amount, "EUR"),
                Err(MoneyError::NotADecimal),
                "{amount}"
            );
        }
        assert!(matches!(
            Money::parse(&json!("1.005"), "EUR"),
            Err(MoneyError::TooManyFractionDigits { allowed: 2, .. })
        ));
        assert_eq!(
            Money::parse(&json!("1"), "€"),
            Err(MoneyError::NotACurrencyCode)
        );
    }

    #[test]
    fn amounts_stay_exact_beyond_float_precision() {
        assert_eq!(
            money(json!("123456789012345678901.23"), "EUR").format("en-US"),
            "€123,456,789,012,345,678,901.23"
        );
    }
}
