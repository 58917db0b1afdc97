//! Owns coverage and formatter inputs (§9.2): Cobertura XML and LCOV into per-file line
//! counts, the overall percent (Cobertura's root `line-rate` × 100, else covered / valid
//! lines), the per-directory ("domain") breakdown with its lagging threshold, and the
//! formatter-mode entry from an allowlist.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The most files one coverage report may list.
pub const MAX_FILES: usize = 200_000;
/// The longest file path kept.
pub const MAX_PATH_BYTES: usize = 1024;

/// Line counts of one source file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCoverage {
    pub path: String,
    pub lines_valid: u64,
    pub lines_covered: u64,
}

/// Which format a coverage report came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoverageFormat {
    Cobertura,
    Lcov,
}

/// A parsed coverage report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoverageReport {
    pub format: CoverageFormat,
    /// Cobertura's root `line-rate` (0..=1) when present and valid.
    pub line_rate: Option<f64>,
    pub files: Vec<FileCoverage>,
}

/// Why a coverage report is refused (answers 422, nothing stored).
#[derive(Debug, thiserror::Error)]
pub enum CoverageError {
    #[error(
        "coverage report is not well-formed XML: {0}; upload the Cobertura file the tool wrote"
    )]
    Xml(#[from] roxmltree::Error),
    #[error("coverage root is <{0}>, expected <coverage>: upload a Cobertura XML file")]
    NotCobertura(String),
    #[error("lcov line {line}: {detail}; upload the lcov file the tool wrote")]
    Lcov { line: usize, detail: String },
    #[error("coverage report lists no source lines: upload the report of a run with coverage")]
    Empty,
    #[error("coverage report lists more than {MAX_FILES} files: split it")]
    TooManyFiles,
    #[error("a file path is empty or longer than {MAX_PATH_BYTES} bytes: the report is damaged")]
    BadPath,
    #[error("coverage report is not UTF-8 text: upload the file the tool wrote")]
    NotUtf8,
}

impl CoverageReport {
    pub fn lines_valid(&self) -> u64 {
        self.files.iter().map(|f| f.lines_valid).sum()
    }

    pub fn lines_covered(&self) -> u64 {
        self.files.iter().map(|f| f.lines_covered).sum()
    }

    /// Overall percent, 2 decimals: `line-rate` × 100 when the report has one, else
    /// covered / valid lines (§9.2).
    pub fn percent(&self) -> f64 {
        match self.line_rate {
            Some(rate) => round2(rate * 100.0),
            None => percent_of(self.lines_covered(), self.lines_valid()),
        }
    }

    /// Coverage per domain: files grouped by the first `depth` directory components of their
    /// path (files with fewer use their whole directory, files at the root `.`), sorted by
    /// domain name.
    pub fn domains(&self, depth: usize) -> Vec<DomainCoverage> {
        let mut by: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
        for f in &self.files {
            let entry = by.entry(domain_of(&f.path, depth)).or_default();
            entry.0 += 1;
            entry.1 += f.lines_valid;
            entry.2 += f.lines_covered;
        }
        by.into_iter()
            .filter(|(_, (_, valid, _))| *valid > 0)
            .map(|(domain, (files, valid, covered))| DomainCoverage {
                domain,
                files,
                lines_valid: valid,
                lines_covered: covered,
                percent: percent_of(covered, valid),
            })
            .collect()
    }
}

/// Coverage of one domain (directory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainCoverage {
    pub domain: String,
    pub files: u64,
    pub lines_valid: u64,
    pub lines_covered: u64,
    pub percent: f64,
}

/// The domain (directory prefix) of a file path.
pub fn domain_of(path: &str, depth: usize) -> String {
    let path = path.replace('\\', "/");
    let dirs: Vec<&str> = path
        .trim_start_matches("./")
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    let dirs = &dirs[..dirs.len().saturating_sub(1)];
    if dirs.is_empty() {
        return ".".to_owned();
    }
    dirs[..dirs.len().min(depth.max(1))].join("/")
}

/// `covered / valid` in percent, 2 decimals; 0 when there are no lines.
pub fn percent_of(covered: u64, valid: u64) -> f64 {
    if valid == 0 {
        0.0
    } else {
        round2(covered as f64 * 100.0 / valid as f64)
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn check_path(path: &str) -> Result<(), CoverageError> {
    if path.trim().is_empty() || path.len() > MAX_PATH_BYTES {
        Err(CoverageError::BadPath)
    } else {
        Ok(())
    }
}

/// Parses Cobertura XML (coverage.py, cargo-llvm-cov, JaCoCo converters). DTDs are refused.
pub fn parse_cobertura(xml: &str) -> Result<CoverageReport, CoverageError> {
    let doc = roxmltree::Document::parse(xml)?;
    let root = doc.root_element();
    if !root.has_tag_name("coverage") {
        return Err(CoverageError::NotCobertura(
            root.tag_name().name().chars().take(64).collect(),
        ));
    }
    let line_rate = root
        .attribute("line-rate")
        .and_then(|r| r.trim().parse::<f64>().ok())
        .filter(|r| r.is_finite() && (0.0..=1.0).contains(r));
    let mut files: BTreeMap<String, BTreeMap<u64, bool>> = BTreeMap::new();
    for class in root.descendants().filter(|n| n.has_tag_name("class")) {
        let Some(path) = class.attribute("filename") else {
            continue;
        };
        check_path(path)?;
        if !files.contains_key(path) && files.len() == MAX_FILES {
            return Err(CoverageError::TooManyFiles);
        }
        let lines = files.entry(path.to_owned()).or_default();
        // Only the class's own <lines>, not the copies under <methods>.
        for container in class.children().filter(|n| n.has_tag_name("lines")) {
            for line in container.children().filter(|n| n.has_tag_name("line")) {
                let Some(number) = line.attribute("number").and_then(|n| n.parse::<u64>().ok())
                else {
                    continue;
                };
                let hit = line
                    .attribute("hits")
                    .and_then(|h| h.parse::<u64>().ok())
                    .is_some_and(|h| h > 0);
                let seen = lines.entry(number).or_insert(false);
                *seen |= hit;
            }
        }
    }
    let files: Vec<FileCoverage> = files
        .into_iter()
        .map(|(path, lines)| FileCoverage {
            path,
            lines_valid: lines.len() as u64,
            lines_covered: lines.values().filter(|h| **h).count() as u64,
        })
        .collect();
    if files.iter().all(|f| f.lines_valid == 0) && line_rate.is_none() {
        return Err(CoverageError::Empty);
    }
    Ok(CoverageReport {
        format: CoverageFormat::Cobertura,
        line_rate,
        files,
    })
}

/// Parses an LCOV tracefile (`SF:`, `DA:`, `LF:`/`LH:`, `end_of_record`).
pub fn parse_lcov(text: &str) -> Result<CoverageReport, CoverageError> {
    // path → (hit per DA line, LF, LH)
    type Record = (BTreeMap<u64, bool>, Option<u64>, Option<u64>);
    let mut files: BTreeMap<String, Record> = BTreeMap::new();
    let mut current: Option<String> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let bad = |detail: &str| CoverageError::Lcov {
            line: i + 1,
            detail: detail.to_owned(),
        };
        if let Some(path) = line.strip_prefix("SF:") {
            check_path(path)?;
            if !files.contains_key(path) && files.len() == MAX_FILES {
                return Err(CoverageError::TooManyFiles);
            }
            files.entry(path.to_owned()).or_default();
            current = Some(path.to_owned());
        } else if line == "end_of_record" {
            current = None;
        } else if let Some(rest) = line.strip_prefix("DA:") {
            let path = current
                .as_ref()
                .ok_or_else(|| bad("DA outside a SF record"))?;
            let mut parts = rest.split(',');
            let number = parts
                .next()
                .and_then(|n| n.trim().parse::<u64>().ok())
                .ok_or_else(|| bad("DA line number is not a number"))?;
            let hits = parts
                .next()
                .and_then(|h| h.trim().parse::<i64>().ok())
                .ok_or_else(|| bad("DA hit count is not a number"))?;
            if let Some(entry) = files.get_mut(path) {
                *entry.0.entry(number).or_insert(false) |= hits > 0;
            }
        } else if let Some(rest) = line
            .strip_prefix("LF:")
            .or_else(|| line.strip_prefix("LH:"))
        {
            let path = current
                .as_ref()
                .ok_or_else(|| bad("LF/LH outside a SF record"))?;
            let n = rest
                .trim()
                .parse::<u64>()
                .map_err(|_| bad("LF/LH is not a number"))?;
            if let Some(entry) = files.get_mut(path) {
                if line.starts_with("LF:") {
                    entry.1 = Some(n);
                } else {
                    entry.2 = Some(n);
                }
            }
        }
    }
    let files: Vec<FileCoverage> = files
        .into_iter()
        .map(|(path, (lines, lf, lh))| {
            if lines.is_empty() {
                let valid = lf.unwrap_or(0);
                FileCoverage {
                    path,
                    lines_valid: valid,
                    lines_covered: lh.unwrap_or(0).min(valid),
                }
            } else {
                FileCoverage {
                    path,
                    lines_valid: lines.len() as u64,
                    lines_covered: lines.values().filter(|h| **h).count() as u64,
                }
            }
        })
        .collect();
    if files.iter().all(|f| f.lines_valid == 0) {
        return Err(CoverageError::Empty);
    }
    Ok(CoverageReport {
        format: CoverageFormat::Lcov,
        line_rate: None,
        files,
    })
}

/// Parses either format, by its first non-blank byte (`<` Cobertura, else LCOV).
pub fn parse_coverage(body: &[u8]) -> Result<CoverageReport, CoverageError> {
    let text = std::str::from_utf8(body).map_err(|_| CoverageError::NotUtf8)?;
    let text = text.trim_start_matches('\u{feff}');
    if text.trim_start().starts_with('<') {
        parse_cobertura(text)
    } else {
        parse_lcov(text)
    }
}

/// The formatter mode entry of §9.2: `global` (every file formatted; counts zero) or
/// `allowlist` (only the listed paths; a line ending in `/` is a directory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormatterMode {
    pub mode: String,
    pub total_entries: u64,
    pub directory_count: u64,
    pub file_count: u64,
}

impl FormatterMode {
    pub fn global() -> Self {
        Self {
            mode: "global".to_owned(),
            total_entries: 0,
            directory_count: 0,
            file_count: 0,
        }
    }

    /// Counts an allowlist (blank lines and `#` comments ignored).
    pub fn allowlist(text: &str) -> Self {
        let entries: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let directories = entries.iter().filter(|e| e.ends_with('/')).count() as u64;
        Self {
            mode: "allowlist".to_owned(),
            total_entries: entries.len() as u64,
            directory_count: directories,
            file_count: entries.len() as u64 - directories,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_group_by_leading_directories() {
        let table = [
            ("src/a/b/c.rs", 2, "src/a"),
            ("src/a/b/c.rs", 1, "src"),
            ("src/x.rs", 2, "src"),
            ("./src/x.rs", 2, "src"),
            ("x.rs", 2, "."),
            ("a\\b\\c.py", 5, "a/b"),
            ("", 2, "."),
        ];
        for (path, depth, want) in table {
            assert_eq!(domain_of(path, depth), want, "{path} at {depth}");
        }
    }

    #[test]
    fn hostile_reports_are_refused() {
        let bad: [&[u8]; 8] = [
            b"",
            b"<html/>",
            b"<coverage",
            b"<coverage line-rate='x'><packages/></coverage>",
            b"DA:1,1\n",
            b"SF:a.py\nDA:x,1\n",
            b"SF:a.py\nLF:many\n",
            b"\xff\xfe",
        ];
        for body in bad {
            assert!(
                parse_coverage(body).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn lcov_without_da_lines_uses_lf_lh_and_caps_hits() {
        let report = parse_lcov("SF:a/b.rs\nLF:10\nLH:40\nend_of_record\n").expect("parses");
        assert_eq!(report.files[0].lines_covered, 10);
        assert_eq!(report.percent(), 100.0);
    }

    #[test]
    fn formatter_modes() {
        assert_eq!(FormatterMode::global().total_entries, 0);
        let list = FormatterMode::allowlist("# formatted\nsrc/\nsrc/main.rs\n\ntests/\n");
        assert_eq!(
            (list.total_entries, list.directory_count, list.file_count),
            (3, 2, 1)
        );
    }
}
