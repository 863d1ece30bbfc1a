/** A plain text table, as `runtime list` and `runtime snapshots` print it: padded columns. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows
    .map(
      (row) =>
        `${row
          .map((cell, i) => cell.padEnd(widths[i]!))
          .join('   ')
          .trimEnd()}\n`,
    )
    .join('');
}
