import { OptionError } from '../util/option-error.js';

/** The flag that sets each library option: the one place where library option names become CLI flags. */
export const OPTION_FLAGS: Readonly<Record<string, string>> = {
  outputLayer: '--backbone-output',
  splits: '--splits',
  cacheDir: '--cache-dir',
  backend: '--dist-backend',
};

/** `error`'s message with the first OptionError in it (itself or a cause) naming its option by flag. */
export function withOptionFlags(error: Error): string {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    const flag = e instanceof OptionError ? OPTION_FLAGS[e.option] : undefined;
    if (flag) return error.message.replace(e.message, (e as OptionError).messageFor(flag));
  }
  return error.message;
}
