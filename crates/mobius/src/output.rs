//! Terminal conventions: colour only on a terminal and never with `NO_COLOR`; `--json` printed
//! pretty; tables aligned as every table Mobius prints ([`mobius_insights::text::Table`]).

use std::io::IsTerminal;

fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

pub fn color_stdout() -> bool {
    !no_color() && std::io::stdout().is_terminal()
}

pub fn color_stderr() -> bool {
    !no_color() && std::io::stderr().is_terminal()
}

pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints `rows` under `header`, indented by `indent` spaces, each column as wide as its
/// widest cell.
pub fn print_table<const N: usize>(indent: usize, header: [&str; N], rows: &[[String; N]]) {
    print!("{}", table(indent, header, rows));
}

fn table<const N: usize>(indent: usize, header: [&str; N], rows: &[[String; N]]) -> String {
    let mut table = mobius_insights::text::Table::new(indent);
    table.row(header);
    for row in rows {
        table.row(row.iter().map(String::as_str));
    }
    let mut out = String::new();
    table.render(&mut out, false);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_are_as_wide_as_their_widest_cell_and_lines_end_with_text() {
        let rows =
            [["1".to_owned(), "success".to_owned(), String::new()], ["12".to_owned(), "—".to_owned(), "x".to_owned()]];
        assert_eq!(super::table(0, ["ID", "STATE", "NOTE"], &rows), "ID  STATE    NOTE\n1   success\n12  —        x\n");
        assert_eq!(super::table(2, ["ID"], &[["1".to_owned()]]), "  ID\n  1\n");
    }
}
