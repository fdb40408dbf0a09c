import { existsSync } from 'node:fs';

/**
 * Text in PNGs: resvg draws no text without a font file, and fresh machines may have no fonts at
 * all. We use DejaVu Sans from the Debian package fonts-dejavu-core and name the same family in
 * the Vega config, so that PNG and SVG agree.
 */
export const CHART_FONT_FAMILY = 'DejaVu Sans';
/** What the SVG asks for: DejaVu Sans where installed (as in the PNGs), else the browser's sans. */
export const CHART_FONT_STACK = `${CHART_FONT_FAMILY}, Verdana, Arial, sans-serif`;

export const FONT_ENV_VAR = 'TRANSFERLAB_CHART_FONT';

const DEJAVU_DIRS = ['/usr/share/fonts/truetype/dejavu', '/usr/share/fonts/TTF', '/usr/share/fonts/dejavu', '/usr/local/share/fonts'];

export class ChartFontNotFoundError extends Error {
  constructor(searched: string[]) {
    super(
      'No font file for chart text in PNGs. Install the Debian package fonts-dejavu-core ' +
        '(apt-get install -y fonts-dejavu-core), or set ' +
        `${FONT_ENV_VAR} to a .ttf file. Looked for: ${searched.join(', ')}`,
    );
    this.name = 'ChartFontNotFoundError';
  }
}

/**
 * Font files for resvg: `$TRANSFERLAB_CHART_FONT` if set (it must exist), else DejaVu Sans regular
 * (required) plus bold (titles are bold; without it resvg synthesises nothing and uses regular).
 */
export function findChartFontFiles(env: NodeJS.ProcessEnv = process.env): string[] {
  const explicit = env[FONT_ENV_VAR];
  if (explicit) {
    if (!existsSync(explicit)) throw new ChartFontNotFoundError([explicit]);
    return [explicit];
  }
  const regular = DEJAVU_DIRS.map((dir) => `${dir}/DejaVuSans.ttf`);
  const found = regular.find((file) => existsSync(file));
  if (!found) throw new ChartFontNotFoundError(regular);
  const bold = found.replace(/DejaVuSans\.ttf$/, 'DejaVuSans-Bold.ttf');
  return existsSync(bold) ? [found, bold] : [found];
}
