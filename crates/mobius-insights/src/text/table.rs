//! Column-aligned rows for a terminal: the reports here, and every table the `mobius` CLI
//! prints.

/// One cell, optionally painted with an ANSI SGR code when colour is on.
pub struct Cell {
    text: String,
    paint: Option<&'static str>,
}

impl Cell {
    /// A cell painted with `sgr` (e.g. `"32"` for green) when colour is on.
    pub fn painted(text: impl Into<String>, sgr: Option<&'static str>) -> Cell {
        Cell { text: text.into(), paint: sgr }
    }

    fn width(&self) -> usize {
        self.text.chars().count()
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Cell {
        Cell { text, paint: None }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Cell {
        Cell::from(text.to_owned())
    }
}

/// Rows whose columns line up, indented by a fixed number of spaces.
pub struct Table {
    indent: usize,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    /// An empty table whose rows are indented by `indent` spaces.
    pub fn new(indent: usize) -> Table {
        Table { indent, rows: Vec::new() }
    }

    /// Appends a row; rows may have fewer cells than others.
    pub fn row<C: Into<Cell>>(&mut self, cells: impl IntoIterator<Item = C>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// Appends the table to `out`, a line per row. Widths count characters, not bytes, so
    /// `—` and `→` take one column; escape codes are added after padding so they take none.
    pub fn render(&self, out: &mut String, color: bool) {
        self.render_with(out, color, &self.widths());
    }

    /// The widest cell of every column across `tables`, so tables rendered one after another
    /// with these widths line up with each other.
    pub fn shared_widths<'a>(tables: impl IntoIterator<Item = &'a Table>) -> Vec<usize> {
        let mut widths: Vec<usize> = Vec::new();
        for table in tables {
            for (c, width) in table.widths().into_iter().enumerate() {
                match widths.get_mut(c) {
                    Some(w) => *w = (*w).max(width),
                    None => widths.push(width),
                }
            }
        }
        widths
    }

    /// Like [`Table::render`], with column widths given (at least this table's own).
    pub fn render_with(&self, out: &mut String, color: bool, widths: &[usize]) {
        for row in &self.rows {
            let mut line = " ".repeat(self.indent);
            for (c, cell) in row.iter().enumerate() {
                if c > 0 {
                    line.push_str("  ");
                }
                match cell.paint.filter(|_| color) {
                    Some(sgr) => line.push_str(&format!("\x1b[{sgr}m{}\x1b[0m", cell.text)),
                    None => line.push_str(&cell.text),
                }
                let width = widths.get(c).copied().unwrap_or(0);
                line.extend(std::iter::repeat_n(' ', width.saturating_sub(cell.width())));
            }
            // Padding after the last cell is invisible noise in files and diffs.
            out.push_str(line.trim_end_matches(' '));
            out.push('\n');
        }
    }

    fn widths(&self) -> Vec<usize> {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        (0..columns)
            .map(|c| self.rows.iter().filter_map(|row| row.get(c)).map(Cell::width).max().unwrap_or(0))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_by_characters() {
        let mut table = Table::new(2);
        table.row(["a", "—", "x"]);
        table.row(["long", "bb", ""]);
        let mut out = String::new();
        table.render(&mut out, false);
        assert_eq!(out, "  a     —   x\n  long  bb\n");
    }

    #[test]
    fn shared_widths_line_tables_up() {
        let mut a = Table::new(0);
        a.row(["x", "1"]);
        let mut b = Table::new(0);
        b.row(["wide", "2"]);
        let widths = Table::shared_widths([&a, &b]);
        let mut out = String::new();
        a.render_with(&mut out, false, &widths);
        b.render_with(&mut out, false, &widths);
        assert_eq!(out, "x     1\nwide  2\n");
    }

    #[test]
    fn paint_only_with_colour() {
        let mut table = Table::new(0);
        table.row([Cell::painted("elite", Some("32")), Cell::from("!")]);
        table.row([Cell::from("medium"), Cell::from("!")]);
        let mut plain = String::new();
        table.render(&mut plain, false);
        assert_eq!(plain, "elite   !\nmedium  !\n");
        let mut painted = String::new();
        table.render(&mut painted, true);
        assert_eq!(painted, "\x1b[32melite\x1b[0m   !\nmedium  !\n");
    }
}
