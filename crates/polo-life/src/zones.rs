//! The handful of time zones the life visits, with their DST rules built in.
//!
//! The generator needs each place's UTC offset for its ground truth ("on
//! day D the user was in Tokyo, offset +9") but must stay free of a time-zone
//! database. These rules are exact for the years the fixture covers (2007
//! onwards):
//!
//! | zone | IANA | standard | DST rule |
//! |---|---|---|---|
//! | [`Zone::Berlin`] | Europe/Berlin | +01:00 | EU: last Sunday of March 01:00 UTC to last Sunday of October 01:00 UTC |
//! | [`Zone::Lisbon`] | Europe/Lisbon | +00:00 | EU, as above |
//! | [`Zone::NewYork`] | America/New_York | −05:00 | US: second Sunday of March 02:00 local to first Sunday of November 02:00 local |
//! | [`Zone::LosAngeles`] | America/Los_Angeles | −08:00 | US, as above |
//! | [`Zone::Tokyo`] | Asia/Tokyo | +09:00 | none |
//! | [`Zone::Honolulu`] | Pacific/Honolulu | −10:00 | none |
//! | [`Zone::Fiji`] | Pacific/Fiji | +12:00 | none *in May–October*: Fiji's irregular summer time (2009–2021) only ever ran from October/November to January–March, so the life visits Fiji between June and September only |

use polo_domain::time::{MS_PER_DAY, civil_from_days, days_from_civil};

/// A time zone of the built-in table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Zone {
    /// Europe/Berlin (home).
    Berlin,
    /// Europe/Lisbon.
    Lisbon,
    /// America/New_York.
    NewYork,
    /// America/Los_Angeles.
    LosAngeles,
    /// Asia/Tokyo.
    Tokyo,
    /// Pacific/Honolulu.
    Honolulu,
    /// Pacific/Fiji (no DST in the months the life goes there).
    Fiji,
}

/// Which daylight-saving rule a zone follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    None,
    Eu,
    Us,
}

impl Zone {
    /// The IANA name.
    #[must_use]
    pub fn iana(self) -> &'static str {
        match self {
            Self::Berlin => "Europe/Berlin",
            Self::Lisbon => "Europe/Lisbon",
            Self::NewYork => "America/New_York",
            Self::LosAngeles => "America/Los_Angeles",
            Self::Tokyo => "Asia/Tokyo",
            Self::Honolulu => "Pacific/Honolulu",
            Self::Fiji => "Pacific/Fiji",
        }
    }

    fn standard_minutes(self) -> i16 {
        match self {
            Self::Berlin => 60,
            Self::Lisbon => 0,
            Self::NewYork => -300,
            Self::LosAngeles => -480,
            Self::Tokyo => 540,
            Self::Honolulu => -600,
            Self::Fiji => 720,
        }
    }

    fn rule(self) -> Rule {
        match self {
            Self::Berlin | Self::Lisbon => Rule::Eu,
            Self::NewYork | Self::LosAngeles => Rule::Us,
            Self::Tokyo | Self::Honolulu | Self::Fiji => Rule::None,
        }
    }

    /// The UTC offset in minutes at instant `utc_ms`.
    #[must_use]
    pub fn offset_minutes(self, utc_ms: i64) -> i16 {
        let standard = self.standard_minutes();
        let (start, end) = match self.rule() {
            Rule::None => return standard,
            Rule::Eu => {
                let year = year_of(utc_ms);
                (last_sunday(year, 3) * MS_PER_DAY + 3_600_000, last_sunday(year, 10) * MS_PER_DAY + 3_600_000)
            }
            Rule::Us => {
                let year = year_of(utc_ms);
                let std_ms = i64::from(standard) * 60_000;
                // 02:00 local standard time, and 02:00 local daylight time (= 01:00 standard).
                let start = nth_sunday(year, 3, 2) * MS_PER_DAY + 2 * 3_600_000 - std_ms;
                let end = nth_sunday(year, 11, 1) * MS_PER_DAY + 3_600_000 - std_ms;
                (start, end)
            }
        };
        if (start..end).contains(&utc_ms) { standard + 60 } else { standard }
    }

    /// The instants (UTC ms) at which the offset changes in `year`, with the offset after.
    #[must_use]
    pub fn transitions(self, year: i32) -> Vec<(i64, i16)> {
        let probe = |days: i64| days * MS_PER_DAY;
        let mut out = Vec::new();
        if self.rule() == Rule::None {
            return out;
        }
        // Scan day by day at hourly resolution around the two candidate Sundays.
        for month in [3, 10, 11] {
            for day in 1..=31u32 {
                if day > polo_domain::time::days_in_month(year, month) {
                    break;
                }
                let d = days_from_civil(year, month, day);
                for hour in 0..24 {
                    let t = probe(d) + hour * 3_600_000;
                    let (before, after) = (self.offset_minutes(t - 1), self.offset_minutes(t));
                    if before != after {
                        out.push((t, after));
                    }
                }
            }
        }
        out
    }
}

fn year_of(utc_ms: i64) -> i32 {
    civil_from_days(utc_ms.div_euclid(MS_PER_DAY)).0
}

/// Days since the epoch of the last Sunday of `month`.
fn last_sunday(year: i32, month: u32) -> i64 {
    let last = days_from_civil(year, month, polo_domain::time::days_in_month(year, month));
    last - weekday(last)
}

/// Days since the epoch of the `n`th Sunday of `month`.
fn nth_sunday(year: i32, month: u32, n: i64) -> i64 {
    let first = days_from_civil(year, month, 1);
    let to_sunday = (7 - weekday(first)) % 7;
    first + to_sunday + 7 * (n - 1)
}

/// Day of week, 0 = Sunday.
#[must_use]
pub fn weekday(days: i64) -> i64 {
    // 1970-01-01 was a Thursday.
    (days + 4).rem_euclid(7)
}

#[cfg(test)]
mod tests {
    use super::Zone;
    use polo_domain::Timestamp;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        Timestamp::from_civil(y, mo, d, h, mi, 0, 0).unwrap().0
    }

    #[test]
    fn eu_rule_switches_at_one_utc_on_the_last_sundays() {
        // 2019-03-31 and 2019-10-27.
        assert_eq!(Zone::Berlin.offset_minutes(at(2019, 3, 31, 0, 59)), 60);
        assert_eq!(Zone::Berlin.offset_minutes(at(2019, 3, 31, 1, 0)), 120);
        assert_eq!(Zone::Berlin.offset_minutes(at(2019, 10, 27, 0, 59)), 120);
        assert_eq!(Zone::Berlin.offset_minutes(at(2019, 10, 27, 1, 0)), 60);
        assert_eq!(Zone::Lisbon.offset_minutes(at(2019, 7, 1, 12, 0)), 60);
    }

    #[test]
    fn us_rule_switches_at_two_local() {
        // 2019-03-10 02:00 EST = 07:00 UTC; 2019-11-03 02:00 EDT = 06:00 UTC.
        assert_eq!(Zone::NewYork.offset_minutes(at(2019, 3, 10, 6, 59)), -300);
        assert_eq!(Zone::NewYork.offset_minutes(at(2019, 3, 10, 7, 0)), -240);
        assert_eq!(Zone::NewYork.offset_minutes(at(2019, 11, 3, 5, 59)), -240);
        assert_eq!(Zone::NewYork.offset_minutes(at(2019, 11, 3, 6, 0)), -300);
        assert_eq!(Zone::LosAngeles.offset_minutes(at(2019, 11, 3, 9, 0)), -480);
    }

    #[test]
    fn transitions_are_listed_and_fixed_zones_have_none() {
        assert_eq!(Zone::Berlin.transitions(2019), vec![(at(2019, 3, 31, 1, 0), 120), (at(2019, 10, 27, 1, 0), 60)]);
        assert_eq!(Zone::NewYork.transitions(2019), vec![(at(2019, 3, 10, 7, 0), -240), (at(2019, 11, 3, 6, 0), -300)]);
        assert!(Zone::Fiji.transitions(2019).is_empty() && Zone::Tokyo.transitions(2019).is_empty());
    }
}
