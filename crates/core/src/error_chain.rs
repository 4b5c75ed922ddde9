//! `ErrorChain`: how a log line or a command's last words show an error that
//! keeps its cause in `source()` rather than in its own message.

use std::error::Error;
use std::fmt;

/// Displays an error followed by each of its causes, `: `-separated, as in
/// "storage is full: cannot append: database or disk is full". A cause whose
/// words the message before it already holds is not repeated (some drivers
/// put their cause's text in their own message too).
pub struct ErrorChain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.to_string();
        f.write_str(&shown)?;
        let mut cause = self.0.source();
        while let Some(error) = cause {
            let text = error.to_string();
            if !shown.contains(&text) {
                write!(f, ": {text}")?;
            }
            shown = text;
            cause = error.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Layer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as &(dyn Error + 'static))
        }
    }

    #[test]
    fn shows_each_cause_once() {
        let disk = Layer("database or disk is full", None);
        let driver = Layer("database or disk is full", Some(Box::new(disk)));
        let store = Layer("storage is full: cannot append", Some(Box::new(driver)));
        assert_eq!(
            ErrorChain(&store).to_string(),
            "storage is full: cannot append: database or disk is full"
        );
        assert_eq!(ErrorChain(&Layer("alone", None)).to_string(), "alone");
    }
}
