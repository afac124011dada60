//! Time series from CSV: a timestamp (one column, or a date column plus an hour column), a
//! numeric target and optional numeric covariates, hourly or daily.
//!
//! The reader checks what forecasting silently gets wrong otherwise: unparseable dates,
//! duplicate or out-of-order timestamps and non-numeric values are errors naming the row and
//! column; gaps (missing hours or days) are found and reported in [`TimeSeries::gaps`].
//! Timestamps are wall-clock times without a zone, stored as seconds since 1970-01-01T00:00.

use std::path::{Path, PathBuf};

use crate::DataError;

/// The spacing of a series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frequency {
    /// One value per hour.
    Hourly,
    /// One value per day.
    Daily,
}

impl Frequency {
    /// Seconds between two consecutive values.
    pub fn seconds(self) -> i64 {
        match self {
            Frequency::Hourly => 3600,
            Frequency::Daily => 86_400,
        }
    }

    /// Values per week (the seasonal period of the seasonal-naive forecast).
    pub fn per_week(self) -> usize {
        match self {
            Frequency::Hourly => 168,
            Frequency::Daily => 7,
        }
    }
}

/// Which columns hold what.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TsColumns {
    /// One column with the full timestamp (`2017-01-31 13:00`, `2017-01-31T13:00:00`, or a date).
    pub timestamp: Option<String>,
    /// A date column (`YYYY-MM-DD`), used with `hour` when there is no `timestamp`.
    pub date: Option<String>,
    /// An hour-of-day column (0–23) that goes with `date`.
    pub hour: Option<String>,
    /// The value to forecast.
    pub target: String,
    /// Numeric covariates known in advance (calendar flags, weather, …).
    pub covariates: Vec<String>,
}

/// A run of missing values: `missing` steps are absent after row `after_row` (1-based).
#[derive(Clone, Debug, PartialEq)]
pub struct Gap {
    /// The 1-based data row after which values are missing.
    pub after_row: usize,
    /// Its timestamp.
    pub after: i64,
    /// How many steps are missing.
    pub missing: usize,
}

/// A regular (or gap-reported) time series.
#[derive(Clone, Debug, PartialEq)]
pub struct TimeSeries {
    /// The file it came from.
    pub path: PathBuf,
    /// Timestamps, strictly increasing (seconds since 1970-01-01T00:00, no zone).
    pub times: Vec<i64>,
    /// The target values.
    pub target: Vec<f64>,
    /// Covariates: name and values, aligned with `times`.
    pub covariates: Vec<(String, Vec<f64>)>,
    /// Hourly or daily.
    pub frequency: Frequency,
    /// Missing steps, in order.
    pub gaps: Vec<Gap>,
}

impl TimeSeries {
    /// Number of values.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    /// Whether the series is empty.
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// Hour of day (0–23) of value `i`.
    pub fn hour(&self, i: usize) -> usize {
        (self.times[i].rem_euclid(86_400) / 3600) as usize
    }

    /// Day of week of value `i`, Monday = 0.
    pub fn weekday(&self, i: usize) -> usize {
        // 1970-01-01 was a Thursday (3).
        ((self.times[i].div_euclid(86_400) + 3).rem_euclid(7)) as usize
    }

    /// The index of the first value at or after `t`.
    pub fn index_at_or_after(&self, t: i64) -> usize {
        self.times.partition_point(|&x| x < t)
    }
}

/// Parse `YYYY-MM-DD`, optionally followed by ` HH[:MM[:SS]]` or `THH:MM[:SS]` and an optional
/// `Z`, into seconds since 1970-01-01T00:00. `None` when it is not such a date or not a real one.
pub fn parse_datetime(s: &str) -> Option<i64> {
    let s = s.trim().trim_end_matches('Z');
    let (date, time) = match s.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t.trim())),
        None => (s, None),
    };
    let mut d = date.split('-');
    let (y, m, dd) = (d.next()?, d.next()?, d.next()?);
    if d.next().is_some() || y.len() != 4 || m.len() != 2 || dd.len() != 2 {
        return None;
    }
    let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
    let date = time::Date::from_calendar_date(y.parse().ok()?, month, dd.parse().ok()?).ok()?;
    let days = i64::from(
        date.to_julian_day()
            - time::Date::from_calendar_date(1970, time::Month::January, 1)
                .ok()?
                .to_julian_day(),
    );
    let secs = match time {
        None | Some("") => 0,
        Some(t) => {
            let mut p = t.split(':');
            let h: i64 = p.next()?.parse().ok()?;
            let mi: i64 = p.next().map_or(Some(0), |x| x.parse().ok())?;
            let se: f64 = p.next().map_or(Some(0.0), |x| x.parse().ok())?;
            if p.next().is_some()
                || !(0..24).contains(&h)
                || !(0..60).contains(&mi)
                || !(0.0..60.0).contains(&se)
            {
                return None;
            }
            h * 3600 + mi * 60 + se as i64
        }
    };
    Some(days * 86_400 + secs)
}

/// Format seconds since 1970-01-01T00:00 as `YYYY-MM-DD HH:MM`.
pub fn format_datetime(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let rem = t.rem_euclid(86_400);
    let epoch = time::Date::from_calendar_date(1970, time::Month::January, 1)
        .expect("valid date")
        .to_julian_day();
    match time::Date::from_julian_day(epoch + days as i32) {
        Ok(d) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}",
            d.year(),
            u8::from(d.month()),
            d.day(),
            rem / 3600,
            rem % 3600 / 60
        ),
        Err(_) => format!("t={t}"),
    }
}

/// Read a time series from a CSV file.
pub fn read_timeseries_csv(path: &Path, cols: &TsColumns) -> Result<TimeSeries, DataError> {
    let header_err = |reason: String| DataError::ManifestHeader {
        path: path.to_path_buf(),
        reason,
    };
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .from_path(path)
        .map_err(|e| match e.kind() {
            csv::ErrorKind::Io(io) => {
                DataError::opening(path, std::io::Error::new(io.kind(), io.to_string()))
            }
            _ => header_err(e.to_string()),
        })?;
    let headers = rdr
        .headers()
        .map_err(|e| header_err(e.to_string()))?
        .clone();
    let find = |name: &str, flag: &str| -> Result<usize, DataError> {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| {
                header_err(format!(
                    "no column {name:?} (given by {flag}; columns: {})",
                    headers.iter().collect::<Vec<_>>().join(", ")
                ))
            })
    };
    enum When {
        Stamp(usize),
        DateHour(usize, usize),
        Date(usize),
    }
    let when = match (&cols.timestamp, &cols.date, &cols.hour) {
        (Some(t), _, _) => When::Stamp(find(t, "--timestamp")?),
        (None, Some(d), Some(h)) => {
            When::DateHour(find(d, "--date-column")?, find(h, "--hour-column")?)
        }
        (None, Some(d), None) => When::Date(find(d, "--date-column")?),
        (None, None, _) => {
            return Err(header_err(
                "no time column: give --timestamp COL, or --date-column COL [--hour-column COL]"
                    .into(),
            ));
        }
    };
    let target = find(&cols.target, "--target")?;
    let covs: Vec<usize> = cols
        .covariates
        .iter()
        .map(|c| find(c, "--covariates"))
        .collect::<Result<_, _>>()?;
    let mut times = Vec::new();
    let mut values = Vec::new();
    let mut cov_values: Vec<Vec<f64>> = vec![Vec::new(); covs.len()];
    let mut lines = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let row = i + 1;
        let rec = rec.map_err(|e| DataError::ManifestRow {
            path: path.to_path_buf(),
            row,
            line: e.position().map_or(0, |p| p.line()),
            reason: e.to_string(),
        })?;
        let line = rec.position().map_or(0, |p| p.line());
        let bad = |reason: String| DataError::ManifestRow {
            path: path.to_path_buf(),
            row,
            line,
            reason,
        };
        let field = |c: usize| rec.get(c).unwrap_or("").trim();
        let t = match when {
            When::Stamp(c) => parse_datetime(field(c)).ok_or_else(|| {
                bad(format!(
                    "column {:?}: {:?} is not a date-time (expected YYYY-MM-DD[ HH:MM[:SS]])",
                    headers.get(c).unwrap_or(""),
                    field(c)
                ))
            })?,
            When::Date(c) | When::DateHour(c, _) => {
                let d = parse_datetime(field(c))
                    .filter(|_| !field(c).contains([' ', 'T']))
                    .ok_or_else(|| {
                        bad(format!(
                            "column {:?}: {:?} is not a date (expected YYYY-MM-DD)",
                            headers.get(c).unwrap_or(""),
                            field(c)
                        ))
                    })?;
                match when {
                    When::DateHour(_, h) => {
                        let hour: i64 = field(h)
                            .parse()
                            .ok()
                            .filter(|x| (0..24).contains(x))
                            .ok_or_else(|| {
                                bad(format!(
                                    "column {:?}: {:?} is not an hour (expected 0–23)",
                                    headers.get(h).unwrap_or(""),
                                    field(h)
                                ))
                            })?;
                        d + hour * 3600
                    }
                    _ => d,
                }
            }
        };
        let number = |c: usize, what: &str| -> Result<f64, DataError> {
            field(c)
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    bad(format!(
                        "{what} column {:?}: {:?} is not a number",
                        headers.get(c).unwrap_or(""),
                        field(c)
                    ))
                })
        };
        values.push(number(target, "target")?);
        for (k, &c) in covs.iter().enumerate() {
            cov_values[k].push(number(c, "covariate")?);
        }
        times.push(t);
        lines.push(line);
    }
    if times.is_empty() {
        return Err(DataError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    // Order, duplicates, frequency, gaps.
    for i in 1..times.len() {
        if times[i] == times[i - 1] {
            return Err(DataError::ManifestRow {
                path: path.to_path_buf(),
                row: i + 1,
                line: lines[i],
                reason: format!(
                    "duplicate timestamp {} (also row {})",
                    format_datetime(times[i]),
                    i
                ),
            });
        }
        if times[i] < times[i - 1] {
            return Err(DataError::ManifestRow {
                path: path.to_path_buf(),
                row: i + 1,
                line: lines[i],
                reason: format!(
                    "timestamp {} is before the previous row's {} (rows must be in time order)",
                    format_datetime(times[i]),
                    format_datetime(times[i - 1])
                ),
            });
        }
    }
    let daily_dates = matches!(when, When::Date(_));
    let step = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .min()
        .unwrap_or(if daily_dates { 86_400 } else { 3600 });
    let frequency = match step {
        3600 => Frequency::Hourly,
        86_400 => Frequency::Daily,
        s => {
            let at = times.windows(2).position(|w| w[1] - w[0] == s).unwrap_or(0) + 1;
            return Err(DataError::ManifestRow {
                path: path.to_path_buf(),
                row: at + 1,
                line: lines[at],
                reason: format!(
                    "{s} s after the previous row: only hourly (3600 s) and daily (86400 s) series are supported"
                ),
            });
        }
    };
    let mut gaps = Vec::new();
    for i in 1..times.len() {
        let d = times[i] - times[i - 1];
        if d % step != 0 {
            return Err(DataError::ManifestRow {
                path: path.to_path_buf(),
                row: i + 1,
                line: lines[i],
                reason: format!(
                    "timestamp {} is off the {} grid",
                    format_datetime(times[i]),
                    if step == 3600 { "hourly" } else { "daily" }
                ),
            });
        }
        if d > step {
            gaps.push(Gap {
                after_row: i,
                after: times[i - 1],
                missing: (d / step - 1) as usize,
            });
        }
    }
    Ok(TimeSeries {
        path: path.to_path_buf(),
        times,
        target: values,
        covariates: cols.covariates.iter().cloned().zip(cov_values).collect(),
        frequency,
        gaps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("ts.csv");
        std::fs::write(&p, text).unwrap();
        p
    }

    fn cols() -> TsColumns {
        TsColumns {
            date: Some("Date".into()),
            hour: Some("Hour".into()),
            target: "Arrivals".into(),
            covariates: vec!["temp".into()],
            ..TsColumns::default()
        }
    }

    #[test]
    fn dates_parse_to_wall_clock_seconds() {
        assert_eq!(parse_datetime("1970-01-01"), Some(0));
        assert_eq!(parse_datetime("2017-01-01 13:00"), Some(1_483_275_600));
        assert_eq!(parse_datetime("2017-01-01T13:00:00Z"), Some(1_483_275_600));
        assert_eq!(parse_datetime("2016-02-29"), Some(1_456_704_000));
        for bad in [
            "2017-02-29",
            "2017-13-01",
            "17-01-01",
            "2017-01-01 24:00",
            "x",
            "",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
        assert_eq!(format_datetime(1_483_275_600), "2017-01-01 13:00");
    }

    #[test]
    fn hourly_series_with_a_gap_is_read_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "Date,Hour,Arrivals,temp\n2017-01-01,22,5,30\n2017-01-01,23,7,29.5\n2017-01-02,0,3,29\n2017-01-02,3,4,28\n",
        );
        let ts = read_timeseries_csv(&p, &cols()).unwrap();
        assert_eq!(ts.frequency, Frequency::Hourly);
        assert_eq!(ts.target, vec![5.0, 7.0, 3.0, 4.0]);
        assert_eq!(ts.covariates[0].1, vec![30.0, 29.5, 29.0, 28.0]);
        assert_eq!(
            ts.gaps,
            vec![Gap {
                after_row: 3,
                after: ts.times[2],
                missing: 2
            }]
        );
        assert_eq!(ts.hour(1), 23);
        assert_eq!(ts.weekday(0), 6, "2017-01-01 was a Sunday");
    }

    #[test]
    fn bad_rows_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                "Date,Hour,Arrivals,temp\n2017-01-01,0,5,1\n2017-02-30,1,5,1\n",
                "row 2",
                "not a date",
            ),
            (
                "Date,Hour,Arrivals,temp\n2017-01-01,0,5,1\n2017-01-01,0,6,1\n",
                "row 2",
                "duplicate timestamp 2017-01-01 00:00",
            ),
            (
                "Date,Hour,Arrivals,temp\n2017-01-01,1,5,1\n2017-01-01,0,6,1\n",
                "row 2",
                "before the previous",
            ),
            (
                "Date,Hour,Arrivals,temp\n2017-01-01,0,five,1\n",
                "row 1",
                "target column \"Arrivals\": \"five\" is not a number",
            ),
            (
                "Date,Hour,Arrivals,temp\n2017-01-01,25,5,1\n",
                "row 1",
                "not an hour",
            ),
            (
                "Date,Hour,Arrivals,temp\n2017-01-01,0,5,\n",
                "row 1",
                "covariate column \"temp\"",
            ),
        ];
        for (text, row, want) in cases {
            let e = read_timeseries_csv(&write(dir.path(), text), &cols())
                .unwrap_err()
                .to_string();
            assert!(e.contains(row) && e.contains(want), "{e}");
        }
        let e = read_timeseries_csv(
            &write(dir.path(), "Date,Hour,Count\n2017-01-01,0,5\n"),
            &cols(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("no column \"Arrivals\"") && e.contains("Count"),
            "{e}"
        );
    }
}
