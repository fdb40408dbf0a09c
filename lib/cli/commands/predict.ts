import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { expandImagePaths } from '../../data/image-paths.js';
import { decodeImageFile } from '../../data/index.js';
import { mapPool } from '../../data/pool.js';
import { bf16Support, FLAG_POLICY, type MixedPrecisionFlag, mixedPrecisionFlag } from '../../models/mixed-precision.js';
import { type Preprocessing, parsePreprocessing } from '../../models/preprocessing.js';
import type { Sequential } from '../../models/sequential.js';
import { loadModel, METADATA_FILE, savedModelJson } from '../../saving/persistence.js';
import { ProgressBar } from '../../util/progress-bar.js';
import { classProbabilities, PREDICT_FORMATS, type PredictFormat, PredictionWriter, topK } from '../prediction-output.js';

const HELP = `transferlab predict: classify images with a trained model

Usage: transferlab predict --model RUN_DIR/<model> IMAGE|FOLDER|PATTERN...

  IMAGE              an image file
  FOLDER             every image file under it (recursively; .jpg .jpeg .png .webp .gif .bmp .tif .tiff)
  PATTERN            image files matching * (within a folder name), ? (one character), ** (any folders);
                     quote it ('photos/**/*.jpg') so that the shell leaves it to transferlab

  --model DIR        a model saved by compare (RUN_DIR/cnn, RUN_DIR/transfer: uses its best checkpoint)
                     or any saved model folder (model.json; transferlab.json says how it was trained)
  --preprocess MODE  scale01 (x/255), tf (x/127.5-1) or caffe (VGG16's BGR minus mean): needed for a
                     model without transferlab.json, which alone records how its inputs were scaled
  --classes A,B      names of the outputs, in order, for a model without recorded class names
  --top-k K          the K most probable classes per image, most probable first (default 1)
  --format F         table (aligned, with a header; the default on a terminal), csv (with a header),
                     json (one object per line: image, class, probability, top, output) or
                     tsv (image, class, probability tab-separated, no header; the default otherwise)
  --json             the same as --format json
  --batch-size N     images per engine call (default 32)
  --mixed-precision bf16|fp32  bf16: compute in bfloat16 (Keras's 'mixed_bfloat16'; float32 with a
                     message where the CPU lacks bf16) (default: fp32)
  --bf16             the same as --mixed-precision bf16
  -h, --help         this help

Images are resized to the model's input size exactly as in training (bilinear, aspect ratio not kept).
A progress bar (stderr) follows more than one batch. Files that cannot be read are named on stderr,
the others are still predicted, and the exit status is then 1.
`;

/** Why `--model DIR` holds no saved model, and what to give instead (a run folder names its models). */
function noModelAt(dir: string): string {
  if (!existsSync(dir))
    return `--model ${dir}: no such file or folder. Give a model folder saved by compare (RUN_DIR/cnn, RUN_DIR/transfer) or a TF.js model folder.`;
  const models = ['transfer', 'cnn'].map((m) => path.join(dir, m)).filter((m) => existsSync(path.join(m, 'best', 'model.json')));
  const hint =
    models.length > 0 ? `: this is a run folder; give --model ${models.join(' or --model ')}` : ' (a model folder holds model.json)';
  return `--model ${dir} holds no saved model${hint}.`;
}

export async function predictCommand(argv: string[]): Promise<number> {
  let values;
  let positionals: string[];
  let k: number;
  let batchSize: number;
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        model: { type: 'string' },
        preprocess: { type: 'string' },
        classes: { type: 'string' },
        json: { type: 'boolean' },
        'top-k': { type: 'string' },
        format: { type: 'string' },
        'batch-size': { type: 'string' },
        'mixed-precision': { type: 'string' },
        bf16: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
    if (values.preprocess !== undefined) parsePreprocessing(values.preprocess);
    if (values.format !== undefined && !PREDICT_FORMATS.includes(values.format as PredictFormat)) {
      throw new Error(`--format ${values.format} is not one of ${PREDICT_FORMATS.join(', ')}`);
    }
    if (values.json && values.format !== undefined && values.format !== 'json') {
      throw new Error(`--json contradicts --format ${values.format}: give one of them`);
    }
    k = positiveInteger('--top-k', values['top-k']) ?? 1;
    batchSize = positiveInteger('--batch-size', values['batch-size']) ?? 32;
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
  // a run's model (its best/ checkpoint), a model folder, or a model.json itself
  const modelJson =
    (values.model.endsWith('.json') ? undefined : await savedModelJson(path.join(values.model, 'best'))) ??
    (await savedModelJson(values.model));
  if (!modelJson) {
    console.error(`transferlab predict: ${noModelAt(values.model)}`);
    return 2;
  }
  const dir = path.dirname(modelJson);
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
  const { model, metadata } = await loadModel(modelJson, { preprocessing: given });
  const support = flag === 'bf16' ? bf16Support() : undefined;
  if (support && !support.supported)
    console.error(`transferlab predict: --mixed-precision bf16: ${support.reason}; computing in float32 instead.`);
  model.setDtypePolicy(support?.supported ? FLAG_POLICY.bf16 : 'float32');
  if (metadata && given && given !== metadata.preprocessing) {
    console.error(
      `transferlab predict: --preprocess ${given} contradicts the model, which was trained with '${metadata.preprocessing}' ` +
        `(${path.join(dir, METADATA_FILE)}); leave --preprocess out.`,
    );
    return 2;
  }
  const outputs = model.outputShape[model.outputShape.length - 1]!;
  const classCount = outputs === 1 ? 2 : outputs;
  const names = values.classes !== undefined ? values.classes.split(',').map((c) => c.trim()) : (metadata?.classNames ?? []);
  if (values.classes !== undefined && names.length !== classCount) {
    console.error(
      `transferlab predict: --classes names ${names.length} class(es) (${names.join(', ')}) but the model has ${classCount}; give ` +
        `${classCount} names in output order.`,
    );
    return 2;
  }
  if (k > classCount) {
    console.error(`transferlab predict: --top-k ${k} is more than the model's ${classCount} classes; give at most ${classCount}.`);
    return 2;
  }
  const format: PredictFormat = values.json
    ? 'json'
    : ((values.format as PredictFormat | undefined) ?? (process.stdout.isTTY ? 'table' : 'tsv'));
  const { files, problems } = await expandImagePaths(positionals);
  for (const p of problems) console.error(`${p.arg}: ${p.reason}`);
  const writer = new PredictionWriter(format, k, (text) => process.stdout.write(text));
  const failed = await predictFiles(model, files, batchSize, (image, row) => {
    writer.add({ image, top: topK(classProbabilities(row), names, k), output: Array.from(row) });
  });
  writer.end();
  const bad = problems.length + failed;
  if (bad > 0) {
    console.error(
      `transferlab predict: ${bad} input(s) could not be read (named above); the other ${files.length - failed} image(s) were predicted.`,
    );
  }
  return bad ? 1 : 0;
}

/** `--name N`: undefined when absent, a positive integer, or an error naming the option. */
function positiveInteger(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer (got '${text}')`);
  return n;
}

/**
 * Decodes `files` a batch at a time (decodes in parallel) and runs each batch through the model in
 * one engine call; `emit` gets the output rows in file order. Returns how many files failed, each
 * named on stderr.
 */
async function predictFiles(
  model: Sequential,
  files: readonly string[],
  batchSize: number,
  emit: (image: string, row: Float32Array) => void,
): Promise<number> {
  const [h, w] = model.inputShape;
  const pixelsPer = h! * w! * 3;
  const bar = files.length > batchSize ? new ProgressBar({ label: 'predicting', total: files.length, itemName: 'images' }) : undefined;
  let failed = 0;
  try {
    for (let start = 0; start < files.length; start += batchSize) {
      const chunk = files.slice(start, start + batchSize);
      const decoded = await mapPool(chunk, os.availableParallelism(), (file) =>
        decodeImageFile(file, h!, w!).catch((error: Error) => {
          failed++;
          console.error(error.message); // decodeImageFile's errors name the image
          return undefined;
        }),
      );
      const good = chunk.filter((_, i) => decoded[i] !== undefined);
      if (good.length > 0) {
        const x = new Uint8Array(good.length * pixelsPer);
        decoded.filter((d) => d !== undefined).forEach((d, i) => x.set(d, i * pixelsPer));
        const { output } = await model.predict(x, [good.length, h!, w!, 3]);
        const width = output.length / good.length;
        good.forEach((image, i) => emit(image, output.subarray(i * width, (i + 1) * width)));
      }
      bar?.update(start + chunk.length);
    }
  } catch (error) {
    bar?.stop();
    throw error;
  }
  bar?.finish();
  return failed;
}
