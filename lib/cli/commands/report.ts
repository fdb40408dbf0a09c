import { promises as fs } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { formatResultsTable } from '../../reports/terminal.js';
import { InvalidSummaryError, parseRunSummary } from '../../reports/validate.js';
import { writeRunReport } from '../../reports/write-report.js';

export const REPORT_HELP = `Usage: transferlab report RUN_DIR

Re-renders the plots and the HTML report of a finished run from RUN_DIR/summary.json
(written by \`transferlab compare\`). Nothing is trained or evaluated again.

Writes into RUN_DIR:
  val_loss.svg, val_loss.png           validation loss per epoch, one line per model
  val_accuracy.svg, val_accuracy.png   validation accuracy per epoch, one line per model
  <model>_training.svg, .png           training vs validation loss and accuracy, per model
  report.html                          self-contained report (open it in any browser, offline)

Options:
  -h, --help   show this help

PNG text needs a font: install the Debian package fonts-dejavu-core, or set
TRANSFERLAB_CHART_FONT to a .ttf file.

Example:
  transferlab report runs/2024-05-01T12-00-00
`;

/** Where the command prints; tests pass their own, so they never touch the test runner's stdout. */
export interface CommandOutput {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

/** `transferlab report RUN_DIR`. Returns the exit code: 0 done, 1 failed, 2 usage error. */
export async function reportCommand(argv: string[], out: CommandOutput = process): Promise<number> {
  let positionals: string[];
  let help: boolean | undefined;
  try {
    ({
      positionals,
      values: { help },
    } = parseArgs({ args: argv, options: { help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true }));
  } catch (error) {
    out.stderr.write(`transferlab report: ${(error as Error).message}\n\n${REPORT_HELP}`);
    return 2;
  }
  if (help) {
    out.stdout.write(REPORT_HELP);
    return 0;
  }
  if (positionals.length !== 1) {
    out.stderr.write(`transferlab report: expected exactly one RUN_DIR, got ${positionals.length}\n\n${REPORT_HELP}`);
    return 2;
  }
  const runDir = path.resolve(positionals[0]!);
  const summaryPath = path.join(runDir, 'summary.json');

  let text: string;
  try {
    text = await fs.readFile(summaryPath, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'not found' : (error as Error).message;
    out.stderr.write(
      `transferlab report: cannot read ${summaryPath}: ${why}\nRUN_DIR must be a directory written by \`transferlab compare\`.\n`,
    );
    return 1;
  }
  try {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new InvalidSummaryError(summaryPath, [`not valid JSON: ${(error as Error).message}`]);
    }
    const summary = parseRunSummary(json, summaryPath);
    const { files } = await writeRunReport(runDir, summary);
    out.stdout.write(
      `${formatResultsTable(summary)}\n\nWrote ${files.length} files to ${runDir}:\n${files.map((f) => `  ${path.relative(runDir, f)}`).join('\n')}\n`,
    );
    return 0;
  } catch (error) {
    out.stderr.write(`transferlab report: ${(error as Error).message}\n`);
    return 1;
  }
}
