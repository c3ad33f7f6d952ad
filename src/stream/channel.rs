//! Channel names as clients send them: `quotes:<SYMBOL>`,
//! `forecasts:<MODEL>:<SYMBOL>` and `health`.

use std::fmt;

use crate::market::manager::validate_symbol;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    Quotes(String),
    Forecasts { model: String, symbol: String },
    Health,
}

/// Why a channel name was refused, as the stream's error codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelError {
    /// No such kind of channel, or no served model by that name.
    Unknown(String),
    /// A symbol that cannot be one, or a name that is not a string.
    Invalid(String),
}

impl ChannelError {
    pub fn code(&self) -> &'static str {
        match self {
            ChannelError::Unknown(_) => "unknown_channel",
            ChannelError::Invalid(_) => "invalid_input",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            ChannelError::Unknown(m) | ChannelError::Invalid(m) => m,
        }
    }
}

/// Longest channel name read: a symbol and a model name fit well within.
const MAX_NAME: usize = 200;

impl Channel {
    /// Parses `name`; `is_model` says whether a model is served.
    pub fn parse(name: &str, is_model: impl Fn(&str) -> bool) -> Result<Channel, ChannelError> {
        if name.len() > MAX_NAME {
            return Err(ChannelError::Invalid(format!(
                "channel names are at most {MAX_NAME} bytes"
            )));
        }
        let symbol = |raw: &str| {
            validate_symbol(raw).map_err(|e| ChannelError::Invalid(format!("{name}: {e}")))
        };
        let parts: Vec<&str> = name.split(':').collect();
        match parts.as_slice() {
            ["health"] => Ok(Channel::Health),
            ["quotes", s] => Ok(Channel::Quotes(symbol(s)?)),
            ["forecasts", model, s] => {
                let model = model.trim().strip_prefix("enhanced_").unwrap_or(model.trim());
                if !is_model(model) {
                    return Err(ChannelError::Unknown(format!(
                        "{name}: no served model {model:?}"
                    )));
                }
                Ok(Channel::Forecasts {
                    model: model.to_string(),
                    symbol: symbol(s)?,
                })
            }
            _ => Err(ChannelError::Unknown(format!(
                "unknown channel {name:?}: channels are quotes:<SYMBOL>, forecasts:<MODEL>:<SYMBOL> and health"
            ))),
        }
    }

    /// The label of the channel's kind in metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Channel::Quotes(_) => "quotes",
            Channel::Forecasts { .. } => "forecasts",
            Channel::Health => "health",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Channel::Quotes(s) => write!(f, "quotes:{s}"),
            Channel::Forecasts { model, symbol } => write!(f, "forecasts:{model}:{symbol}"),
            Channel::Health => f.write_str("health"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str) -> Result<Channel, ChannelError> {
        Channel::parse(name, |m| m == "lstm_predictor")
    }

    #[test]
    fn names_round_trip_and_symbols_are_normalised() {
        assert_eq!(parse("quotes:aapl").unwrap().to_string(), "quotes:AAPL");
        assert_eq!(
            parse("forecasts:enhanced_lstm_predictor:msft")
                .unwrap()
                .to_string(),
            "forecasts:lstm_predictor:MSFT"
        );
        assert_eq!(parse("health").unwrap(), Channel::Health);
    }

    #[test]
    fn unknown_kinds_and_models_differ_from_bad_symbols() {
        assert_eq!(parse("trades:AAPL").unwrap_err().code(), "unknown_channel");
        assert_eq!(
            parse("forecasts:nope:AAPL").unwrap_err().code(),
            "unknown_channel"
        );
        assert_eq!(parse("quotes:A B;").unwrap_err().code(), "invalid_input");
        assert_eq!(parse("quotes:").unwrap_err().code(), "invalid_input");
    }
}
