import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { decodeImageFile } from '../../data/index.js';
import { classify } from '../../experiment/evaluation.js';
import { bf16Support, FLAG_POLICY, type MixedPrecisionFlag, mixedPrecisionFlag } from '../../models/mixed-precision.js';
import { type Preprocessing, parsePreprocessing } from '../../models/preprocessing.js';
import { loadModel, METADATA_FILE } from '../../saving/persistence.js';

const HELP = `transferlab predict: classify images with a trained model

Usage: transferlab predict --model RUN_DIR/<model> IMAGE...

  --model DIR        a model saved by compare (RUN_DIR/cnn, RUN_DIR/transfer: uses its best checkpoint)
                     or any saved model folder (model.json; transferlab.json says how it was trained)
  --preprocess MODE  scale01 (x/255), tf (x/127.5-1) or caffe (VGG16's BGR minus mean): needed for a
                     model without transferlab.json, which alone records how its inputs were scaled
  --classes A,B      names of the outputs, in order, for a model without recorded class names
  --json             one JSON object per image instead of a table
  --mixed-precision bf16|fp32  bf16: compute in bfloat16 (Keras's 'mixed_bfloat16'; float32 with a
                     message where the CPU lacks bf16) (default: fp32)
  --bf16             the same as --mixed-precision bf16
  -h, --help      this help

Images are resized to the model's input size exactly as in training (bilinear, aspect ratio not kept).
`;

export async function predictCommand(argv: string[]): Promise<number> {
  let values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        model: { type: 'string' },
        preprocess: { type: 'string' },
        classes: { type: 'string' },
        json: { type: 'boolean' },
        'mixed-precision': { type: 'string' },
        bf16: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
    if (values.preprocess !== undefined) parsePreprocessing(values.preprocess);
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
  const hasMetadata = existsSync(path.join(dir, METADATA_FILE));
  const given = values.preprocess as Preprocessing | undefined;
  if (!hasMetadata && !given) {
    console.error(
      `transferlab predict: ${dir} has no ${METADATA_FILE}, so how its inputs were preprocessed is unknown and a guess gives wrong answers. ` +
        'Give --preprocess scale01|tf|caffe (what the model was trained with), and --classes A,B to name its outputs.',
    );
    return 2;
  }
  let flag: MixedPrecisionFlag;
  try {
    flag = mixedPrecisionFlag(values['mixed-precision'], values.bf16);
  } catch (error) {
    console.error(`transferlab predict: ${(error as Error).message}`);
    return 2;
  }
  const { model, metadata } = await loadModel(dir, { preprocessing: given });
  const support = flag === 'bf16' ? bf16Support() : undefined;
  if (support && !support.supported)
    console.error(`transferlab predict: --mixed-precision bf16: ${support.reason}; computing in float32 instead.`);
  model.setDtypePolicy(support?.supported ? FLAG_POLICY.bf16 : 'float32');
  if (metadata && given && given !== metadata.preprocessing) {
    console.error(
      `transferlab predict: --preprocess ${given} contradicts the model, which was trained with '${metadata.preprocessing}' (${path.join(dir, METADATA_FILE)}); leave --preprocess out.`,
    );
    return 2;
  }
  const outputs = model.outputShape[model.outputShape.length - 1]!;
  const classCount = outputs === 1 ? 2 : outputs;
  const names = values.classes !== undefined ? values.classes.split(',').map((c) => c.trim()) : (metadata?.classNames ?? []);
  if (values.classes !== undefined && names.length !== classCount) {
    console.error(
      `transferlab predict: --classes names ${names.length} class(es) (${names.join(', ')}) but the model has ${classCount}; give ${classCount} names in output order.`,
    );
    return 2;
  }
  const [h, w] = model.inputShape;
  let failures = 0;
  for (const image of positionals) {
    let pixels: Uint8Array;
    try {
      pixels = await decodeImageFile(image, h, w);
    } catch (error) {
      failures++;
      console.error((error as Error).message); // decodeImageFile's errors name the image
      continue;
    }
    try {
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
