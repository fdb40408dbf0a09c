import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel } from '../../saving/persistence.js';
import { decodeImageFile } from '../../data/index.js';
import { classify } from '../../experiment/evaluation.js';

const HELP = `transferlab predict: classify images with a trained model

Usage: transferlab predict --model RUN_DIR/<model> IMAGE...

  --model DIR     a model saved by compare (RUN_DIR/cnn, RUN_DIR/transfer: uses its best checkpoint)
                  or any saved model folder (with model.json and transferlab.json)
  --json          one JSON object per image instead of a table
  -h, --help      this help

Images are resized to the model's input size exactly as in training (bilinear, aspect ratio not kept).
`;

export async function predictCommand(argv: string[]): Promise<number> {
  let values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { model: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (error) {
    console.error(`transferlab predict: ${(error as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (!values.model || positionals.length === 0) {
    console.error(`transferlab predict: give --model and at least one image\n\n${HELP}`);
    return 2;
  }
  const dir = existsSync(path.join(values.model, 'best', 'model.json')) ? path.join(values.model, 'best') : values.model;
  const { model, metadata } = await loadModel(dir);
  const names = metadata?.classNames ?? [];
  const [h, w] = model.inputShape;
  let failures = 0;
  for (const image of positionals) {
    try {
      const pixels = await decodeImageFile(image, h, w);
      const { output } = await model.predict(pixels, [1, h, w, 3]);
      const { cls, probability } = classify(output);
      const label = names[cls] ?? String(cls);
      if (values.json) console.log(JSON.stringify({ image, class: label, probability, output: Array.from(output) }));
      else console.log(`${image}\t${label}\t${probability.toFixed(4)}`);
    } catch (error) {
      failures++;
      console.error(`${image}: ${(error as Error).message}`);
    }
  }
  return failures ? 1 : 0;
}
