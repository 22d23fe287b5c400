//! The table layout calicoctl gets from `github.com/olekukonko/tablewriter`
//! v0.0.5 with its defaults (what `calicoctl node status` uses): borders,
//! centred upper-cased headers, cells wrapped at 30 columns with minimal
//! raggedness (text reflowed into one paragraph first), numbers right-aligned
//! and everything else left-aligned. Widths count characters (the Go code
//! counts display width; the tables here are ASCII).

const MAX_WIDTH: usize = 30;
const PENALTY: i64 = 100_000;

fn width(s: &str) -> usize {
    s.chars().count()
}

/// `WrapWords`: break `words` into lines of at most `lim` columns minimising
/// the sum of squared slack; over-long lines cost `PENALTY`.
fn wrap_words(words: &[&str], lim: usize) -> Vec<String> {
    let n = words.len();
    if n == 0 {
        return vec![String::new()];
    }
    let lim = lim as i64;
    // length(i, j): width of words i..=j joined by single spaces (prefix sums
    // instead of Go's n×n table, so memory stays linear).
    let mut prefix = vec![0i64; n + 1];
    for (k, w) in words.iter().enumerate() {
        prefix[k + 1] = prefix[k] + width(w) as i64;
    }
    let length = |i: usize, j: usize| prefix[j + 1] - prefix[i] + (j - i) as i64;
    let mut nbrk = vec![0usize; n];
    let mut cost = vec![i64::from(i32::MAX); n];
    for i in (0..n).rev() {
        if length(i, n - 1) <= lim {
            cost[i] = 0;
            nbrk[i] = n;
        } else {
            for j in i + 1..n {
                let d = lim - length(i, j - 1);
                let mut c = d * d + cost[j];
                if length(i, j - 1) > lim {
                    c += PENALTY;
                }
                if c < cost[i] {
                    cost[i] = c;
                    nbrk[i] = j;
                }
            }
        }
    }
    let mut lines = Vec::new();
    let mut i = 0;
    while i < n {
        let j = nbrk[i].max(i + 1).min(n);
        lines.push(words[i..j].join(" "));
        i = j;
    }
    lines
}

/// `WrapString`: split on single spaces (so runs of spaces give empty words),
/// raise the limit to the longest word, wrap.
fn wrap_string(s: &str, lim: usize) -> Vec<String> {
    let s = s.replace('\n', " ");
    let words: Vec<&str> = s.split(' ').collect();
    let lim = words.iter().map(|w| width(w)).max().unwrap_or(0).max(lim);
    wrap_words(&words, lim)
}

/// `parseDimension`: the lines of one cell and the column width it needs.
fn cell_lines(s: &str) -> (Vec<String>, usize) {
    let raw: Vec<&str> = s.split('\n').collect();
    let mut max = raw.iter().map(|l| width(l)).max().unwrap_or(0);
    if max > MAX_WIDTH {
        max = MAX_WIDTH;
    }
    let para = raw.join(" ");
    let lines = wrap_string(&para, max);
    let w = lines.iter().map(|l| width(l)).max().unwrap_or(0).max(max);
    (lines, w)
}

/// `Title`: `_` → space, `.` between non-digits → space, trim, upper-case.
fn title(name: &str) -> String {
    let orig_len = name.len();
    let rs: Vec<char> = name.chars().collect();
    let num_or_space = |c: char| c.is_ascii_digit() || c == ' ';
    let mut out: Vec<char> = rs.clone();
    for (i, r) in rs.iter().enumerate() {
        match r {
            '_' => out[i] = ' ',
            '.' if (i != 0 && !num_or_space(rs[i - 1])) || (i != rs.len() - 1 && !num_or_space(rs[i + 1])) => {
                out[i] = ' '
            }
            _ => {}
        }
    }
    let s: String = out.into_iter().collect();
    let s = s.trim();
    if s.is_empty() && orig_len > 0 {
        return " ".to_string();
    }
    s.to_uppercase()
}

/// tablewriter's `decimal` regexp `^-?(?:\d{1,3}(?:,\d{3})*|\d+)(?:\.\d+)?$`.
fn is_decimal(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    if let Some(f) = frac {
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if int.is_empty() {
        return false;
    }
    if int.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    let groups: Vec<&str> = int.split(',').collect();
    groups[0].len() <= 3
        && !groups[0].is_empty()
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()))
        && groups[1..].iter().all(|g| g.len() == 3)
}

fn pad_center(s: &str, w: usize) -> String {
    let gap = w.saturating_sub(width(s));
    let left = gap / 2;
    format!("{}{}{}", " ".repeat(left), s, " ".repeat(gap - left))
}

fn pad_right(s: &str, w: usize) -> String {
    format!("{}{}", s, " ".repeat(w.saturating_sub(width(s))))
}

fn pad_left(s: &str, w: usize) -> String {
    format!("{}{}", " ".repeat(w.saturating_sub(width(s))), s)
}

/// Render a table (header + rows) exactly as tablewriter v0.0.5 does with
/// default settings. Every line ends with `\n`.
pub(crate) fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let ncols = headers.len();
    let mut widths = vec![0usize; ncols];
    let head: Vec<Vec<String>> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let (l, w) = cell_lines(h);
            widths[i] = widths[i].max(w);
            l
        })
        .collect();
    let body: Vec<Vec<Vec<String>>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .take(ncols)
                .map(|(i, c)| {
                    let (l, w) = cell_lines(c);
                    widths[i] = widths[i].max(w);
                    l
                })
                .collect()
        })
        .collect();

    let border = {
        let mut s = String::from("+");
        for w in &widths {
            s.push_str(&"-".repeat(w + 2));
            s.push('+');
        }
        s.push('\n');
        s
    };
    let mut out = String::new();
    out.push_str(&border);
    let hh = head.iter().map(Vec::len).max().unwrap_or(1);
    for x in 0..hh {
        out.push('|');
        for (y, w) in widths.iter().enumerate() {
            let h = head.get(y).and_then(|c| c.get(x)).map(String::as_str).unwrap_or("");
            out.push(' ');
            out.push_str(&pad_center(&title(h), *w));
            out.push_str(" |");
        }
        out.push('\n');
    }
    out.push_str(&border);
    for row in &body {
        let rh = row.iter().map(Vec::len).max().unwrap_or(0);
        for x in 0..rh {
            for (y, cell) in row.iter().enumerate() {
                let s = cell.get(x).map(String::as_str).unwrap_or("  ");
                out.push_str("| ");
                if is_decimal(s.trim()) {
                    out.push_str(&pad_left(s, widths[y]));
                } else {
                    out.push_str(&pad_right(s, widths[y]));
                }
                out.push(' ');
            }
            out.push_str("|\n");
        }
    }
    out.push_str(&border);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_like_tablewriter() {
        assert_eq!(wrap_string("Active Socket: Connection refused", 30), vec!["Active Socket: Connection", "refused"]);
        assert_eq!(cell_lines("Active Socket: Connection refused").1, 30);
        assert_eq!(cell_lines("Established"), (vec!["Established".to_string()], 11));
        // A single word longer than the limit widens the column.
        let long = "2002:92a:8f7a:701:250:56ff:fe8d:be72";
        assert_eq!(cell_lines(long), (vec![long.to_string()], 36));
        assert_eq!(cell_lines(""), (vec![String::new()], 0));
    }

    #[test]
    fn titles_and_numbers() {
        assert_eq!(title("Peer address"), "PEER ADDRESS");
        assert_eq!(title("a_b.c"), "A B C");
        assert_eq!(title("1.5"), "1.5");
        assert!(is_decimal("12"));
        assert!(is_decimal("1,234.5"));
        assert!(is_decimal("-3"));
        assert!(!is_decimal("10.0.0.1"));
        assert!(!is_decimal("12:00:01"));
        assert!(!is_decimal(""));
        assert!(!is_decimal("1,23"));
    }

    #[test]
    fn numbers_align_right() {
        let t = render(&["a", "b"], &[vec!["12".into(), "x".into()], vec!["1234".into(), "yy".into()]]);
        assert_eq!(t, "+------+----+\n|  A   | B  |\n+------+----+\n|   12 | x  |\n| 1234 | yy |\n+------+----+\n");
    }
}
