//! The free-text tokenizer, the one definition both backends index with and
//! the reference `matches` searches with (SPEC "Search"): a word is a maximal
//! run of Unicode letters and digits (`char::is_alphanumeric`: Alphabetic or
//! Numeric), lower-cased (`char::to_lowercase`), diacritics kept, no
//! stemming, no normalisation (text is compared as it was sent).

/// The words of `text`, in order, repeats kept.
///
/// `ada@example.com` gives `ada`, `example`, `com`; `payment-gateway` gives
/// `payment`, `gateway`; `Ünïcödé` gives `ünïcödé`.
///
/// Each character is lower-cased on its own (no context, so `Σ` is always
/// `σ`), and what lower-casing adds that is not a letter or digit is left
/// out: `İ` becomes `i` and `İstanbul` the word `istanbul`, so that every
/// word is letters and digits and reads back as itself.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|run| !run.is_empty())
        .map(|run| {
            run.chars()
                .flat_map(char::to_lowercase)
                .filter(|c| c.is_alphanumeric())
                .collect::<String>()
        })
        .filter(|word| !word.is_empty())
}

/// Whether `value` holds `phrase` as consecutive words, the last one
/// possibly only as a prefix (`pay*`).
pub fn holds_phrase(value: &str, phrase: &[String], prefix: bool) -> bool {
    let Some((last, init)) = phrase.split_last() else {
        return false;
    };
    let have: Vec<String> = words(value).collect();
    if have.len() < phrase.len() {
        return false;
    }
    have.windows(phrase.len()).any(|window| {
        let (have_last, have_init) = window.split_last().expect("windows are not empty");
        have_init == init
            && if prefix {
                have_last.starts_with(last.as_str())
            } else {
                have_last == last
            }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Vec<String> {
        words(text).collect()
    }

    #[test]
    fn words_are_runs_of_letters_and_digits_lower_cased() {
        assert_eq!(all("ada@example.com"), ["ada", "example", "com"]);
        assert_eq!(all("payment-gateway"), ["payment", "gateway"]);
        assert_eq!(all("  Login with SSO "), ["login", "with", "sso"]);
        assert_eq!(all("TC-1042"), ["tc", "1042"]);
        // Diacritics kept, non-Latin scripts are words too, no stemming.
        assert_eq!(
            all("Ünïcödé ✓ 日本 payments"),
            ["ünïcödé", "日本", "payments"]
        );
        assert_eq!(all("--- @@ "), Vec::<String>::new());
        // Lower-casing İ adds a combining dot, which is not kept.
        assert_eq!(all("İstanbul ΟΔΟΣ"), ["istanbul", "οδοσ"]);
    }

    #[test]
    fn phrases_are_consecutive_words_of_one_value() {
        let p = |s: &str| all(s);
        assert!(holds_phrase("Login with SSO", &p("with sso"), false));
        assert!(!holds_phrase("Login with SSO", &p("login sso"), false));
        assert!(holds_phrase("Login with SSO", &p("login w"), true));
        assert!(!holds_phrase("Login with SSO", &p("login w"), false));
        assert!(holds_phrase("payment-gateway v2", &p("gateway"), false));
        assert!(!holds_phrase("payments", &p("payment"), false));
        assert!(holds_phrase("payments", &p("pay"), true));
        assert!(!holds_phrase("anything", &[], true));
    }
}
