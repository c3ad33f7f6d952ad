//! Asset classes and their trading calendars. Equities trade on about 252
//! days a year, crypto on all 365: a daily figure annualises with the
//! periods of its class, and a mix of classes, aligned on the dates all of
//! its assets share, with the equities' 252 (those are the days it has).

use chrono::{Days, NaiveDate};

use super::symbols::{crypto_pair, normalize};

/// Trading days a year of a stock exchange.
pub const EQUITY_PERIODS_PER_YEAR: f64 = 252.0;
/// Days a year of a market that never closes.
pub const CRYPTO_PERIODS_PER_YEAR: f64 = 365.0;

/// What kind of market a symbol trades on, by its spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssetClass {
    /// Stocks and indices (`AAPL`, `RELIANCE.NS`, `^GSPC`): exchange days.
    Equity,
    /// Crypto pairs (`BTC-USD`, `BTCUSDT`): every calendar day.
    Crypto,
}

impl AssetClass {
    pub fn of(symbol: &str) -> AssetClass {
        if crypto_pair(&normalize(symbol)).is_some() {
            AssetClass::Crypto
        } else {
            AssetClass::Equity
        }
    }

    /// Daily bars a year.
    pub fn periods_per_year(self) -> f64 {
        match self {
            AssetClass::Equity => EQUITY_PERIODS_PER_YEAR,
            AssetClass::Crypto => CRYPTO_PERIODS_PER_YEAR,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AssetClass::Equity => "equity",
            AssetClass::Crypto => "crypto",
        }
    }
}

/// The calendar of a set of assets: crypto's when every one is crypto,
/// else the equities' (on the dates they all share, the mix trades on
/// exchange days only). No symbols at all: equities', the legacy default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calendar {
    class: AssetClass,
}

impl Calendar {
    pub fn of<S: AsRef<str>>(symbols: &[S]) -> Calendar {
        let all_crypto = !symbols.is_empty()
            && symbols
                .iter()
                .all(|s| AssetClass::of(s.as_ref()) == AssetClass::Crypto);
        Calendar {
            class: if all_crypto {
                AssetClass::Crypto
            } else {
                AssetClass::Equity
            },
        }
    }

    pub fn class(self) -> AssetClass {
        self.class
    }

    pub fn periods_per_year(self) -> f64 {
        self.class.periods_per_year()
    }

    /// Bars of an asset of `class` that span `periods` of this calendar's
    /// days, with a margin for exchange holidays: a crypto asset in a mix
    /// with stocks needs about 365/252 of its bars for each shared day.
    pub fn bars_of(self, class: AssetClass, periods: usize) -> usize {
        if class == self.class || class == AssetClass::Equity {
            return periods;
        }
        let ratio = class.periods_per_year() / self.periods_per_year();
        // 2 % and a week more than the ratio: a year of an exchange has
        // 248 to 252 sessions, and lookbacks end on any weekday.
        (periods as f64 * ratio * 1.02).ceil() as usize + 7
    }

    /// `days` expressed in trading days of the equity calendar (a backtest
    /// period such as "1y" = 252), as bars of this calendar: 365 for crypto.
    pub fn bars_for_trading_days(self, days: usize) -> usize {
        (days as f64 * self.periods_per_year() / EQUITY_PERIODS_PER_YEAR).round() as usize
    }
}

/// The trailing month a past-month return spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Month {
    /// The last 21 closes (a month of exchange sessions).
    Sessions(usize),
    /// From the close 30 calendar days before the newest.
    CalendarDays(u64),
}

/// Sessions in a month of an exchange.
pub const MONTH_SESSIONS: usize = 21;
/// Days in a crypto month.
pub const MONTH_DAYS: u64 = 30;

impl Month {
    pub fn of(class: AssetClass) -> Month {
        match class {
            AssetClass::Equity => Month::Sessions(MONTH_SESSIONS),
            AssetClass::Crypto => Month::CalendarDays(MONTH_DAYS),
        }
    }

    /// Daily bars to fetch to cover the month (with a margin for a missing day).
    pub fn bars(self) -> usize {
        match self {
            Month::Sessions(n) => n + 1,
            Month::CalendarDays(d) => d as usize + 3,
        }
    }

    /// The index of the close the month starts from in `dates` (oldest
    /// first): `n` sessions before the newest, or the newest close at
    /// least 30 days before it. `None` when the dates do not reach back.
    pub fn start(self, dates: &[NaiveDate]) -> Option<usize> {
        let last = dates.len().checked_sub(1)?;
        match self {
            Month::Sessions(n) => last.checked_sub(n),
            Month::CalendarDays(d) => {
                let from = dates[last].checked_sub_days(Days::new(d))?;
                dates.iter().rposition(|date| *date <= from)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_fall_in_their_class() {
        for crypto in ["BTC-USD", "eth-usd", "BTCUSDT", "SOL-EUR"] {
            assert_eq!(AssetClass::of(crypto), AssetClass::Crypto, "{crypto}");
        }
        for stock in ["AAPL", "BRK-B", "RELIANCE.NS", "^GSPC", "NSE:SBIN-EQ"] {
            assert_eq!(AssetClass::of(stock), AssetClass::Equity, "{stock}");
        }
    }

    #[test]
    fn a_mix_with_any_equity_annualises_with_252() {
        assert_eq!(
            Calendar::of(&["BTC-USD", "ETH-USD"]).periods_per_year(),
            365.0
        );
        assert_eq!(Calendar::of(&["BTC-USD", "AAPL"]).periods_per_year(), 252.0);
        assert_eq!(Calendar::of(&["AAPL"]).periods_per_year(), 252.0);
        assert_eq!(Calendar::of::<&str>(&[]).periods_per_year(), 252.0);
    }

    #[test]
    fn crypto_in_a_mix_fetches_enough_days_to_cover_the_sessions() {
        let mix = Calendar::of(&["BTC-USD", "AAPL"]);
        assert_eq!(mix.bars_of(AssetClass::Equity, 252), 252);
        // 252 sessions span a calendar year: at least 365 crypto days.
        assert!(mix.bars_of(AssetClass::Crypto, 252) >= 365);
        let crypto = Calendar::of(&["BTC-USD"]);
        assert_eq!(crypto.bars_of(AssetClass::Crypto, 100), 100);
        assert_eq!(crypto.bars_for_trading_days(252), 365);
        assert_eq!(crypto.bars_for_trading_days(63), 91);
        assert_eq!(mix.bars_for_trading_days(63), 63);
    }

    #[test]
    fn a_crypto_month_spans_30_calendar_days() {
        let day = |d: u32| NaiveDate::from_ymd_opt(2024, 1, d).unwrap();
        let every_day: Vec<NaiveDate> = (1..=31).map(day).collect();
        let start = Month::of(AssetClass::Crypto).start(&every_day).unwrap();
        assert_eq!(every_day[start], day(1));
        // With the 1st missing, the month starts at the newest close before.
        assert_eq!(Month::CalendarDays(30).start(&every_day[1..]), None);
        let sessions: Vec<NaiveDate> = (1..=25).map(day).collect();
        let start = Month::of(AssetClass::Equity).start(&sessions).unwrap();
        assert_eq!(sessions.len() - 1 - start, 21);
    }
}
