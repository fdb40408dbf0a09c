/**
 * An error about one option of a library call. Its message names the option as the library does
 * (`outputLayer`); a front end re-renders it with its own name for that option (a CLI flag).
 */
export class OptionError extends Error {
  constructor(
    readonly option: string,
    private readonly render: (optionName: string) => string,
    options?: ErrorOptions,
  ) {
    super(render(`\`${option}\``), options);
  }

  messageFor(optionName: string): string {
    return this.render(optionName);
  }
}
