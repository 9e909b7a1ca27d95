//! Debian (apt) repositories: the formats (deb822, versions, relationships), the
//! download closure, and OpenPGP for Release files. `source::debian` mirrors from an
//! upstream archive; `target::apt` publishes a signed repository at the site.

pub mod deb822;
pub mod openpgp;
pub mod resolve;
pub mod version;

/// The media type of a `.deb` blob in a bundle.
pub const DEB_MEDIA_TYPE: &str = "application/vnd.debian.binary-package";

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Days since 1970-01-01 -> (year, month 1-12, day 1-31) (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A Release `Date:`: RFC 2822 in UTC, e.g. `Sat, 07 Apr 2018 14:41:12 UTC`.
pub fn release_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil(days);
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} UTC",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[m as usize - 1],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parse a Release date (`[Day, ]DD Mon YYYY HH:MM:SS UTC|GMT|+0000|Z`) to seconds since the epoch.
pub fn parse_release_date(s: &str) -> Option<u64> {
    let s = s.split_once(',').map_or(s, |(_, r)| r).trim();
    let mut it = s.split_whitespace();
    let d: u32 = it.next()?.parse().ok()?;
    let mon = it.next()?;
    let m = MONTHS.iter().position(|x| x.eq_ignore_ascii_case(mon))? as u32 + 1;
    let y: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':').map(|p| p.parse::<u64>());
    let (h, mi, se) = (hms.next()?.ok()?, hms.next()?.ok()?, hms.next().unwrap_or(Ok(0)).ok()?);
    let offset: i64 = match it.next().unwrap_or("UTC") {
        "UTC" | "GMT" | "Z" | "+0000" | "-0000" => 0,
        o if o.len() == 5 && (o.starts_with('+') || o.starts_with('-')) => {
            let v: i64 = o[1..3].parse::<i64>().ok()? * 3600 + o[3..5].parse::<i64>().ok()? * 60;
            if o.starts_with('+') { v } else { -v }
        }
        _ => return None,
    };
    let t = days_from_civil(y, m, d) * 86_400 + (h * 3600 + mi * 60 + se) as i64 - offset;
    u64::try_from(t).ok()
}

/// Where a package goes in a repository's pool (Debian's convention):
/// `pool/<component>/<prefix>/<source>/<package>_<version without epoch>_<arch>.deb`,
/// where `<prefix>` is the source's first letter, or `lib` and the next letter.
pub fn pool_path(component: &str, control: &deb822::Paragraph) -> anyhow::Result<crate::relpath::RelPath> {
    let field = |f: &str| {
        control.get(f).filter(|v| !v.is_empty()).ok_or_else(|| anyhow::anyhow!("control stanza has no `{f}`"))
    };
    let package = field("Package")?;
    let version = field("Version")?;
    let arch = field("Architecture")?;
    let source = control.get("Source").and_then(|s| s.split_whitespace().next()).unwrap_or(package);
    if !resolve::valid_name(package) || !resolve::valid_name(source) || !version::valid(version) {
        anyhow::bail!("control stanza of `{package}` has an invalid package, source or version name");
    }
    if !crate::spec::valid_name(arch) || !crate::spec::valid_dist_name(component) {
        anyhow::bail!("package `{package}`: `{arch}` / `{component}` is not an architecture / component name");
    }
    let prefix = if source.starts_with("lib") && source.len() > 3 { &source[..4] } else { &source[..1] };
    let version = version.split_once(':').map_or(version, |(_, v)| v);
    crate::relpath::RelPath::new(&format!("pool/{component}/{prefix}/{source}/{package}_{version}_{arch}.deb"))
        .map_err(|e| anyhow::anyhow!("package `{package}`: {e}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn release_dates() {
        assert_eq!(super::release_date(1_523_112_072), "Sat, 07 Apr 2018 14:41:12 UTC");
        assert_eq!(super::parse_release_date("Sat, 07 Apr 2018 14:41:12 UTC"), Some(1_523_112_072));
        assert_eq!(super::parse_release_date("07 Apr 2018 16:41:12 +0200"), Some(1_523_112_072));
        assert_eq!(super::release_date(0), "Thu, 01 Jan 1970 00:00:00 UTC");
        assert_eq!(super::parse_release_date("Sat, 29 Feb 2020 00:00:00 UTC"), Some(1_582_934_400));
        assert_eq!(super::parse_release_date("garbage"), None);
    }
}
