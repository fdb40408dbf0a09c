/**
 * The experiment's CNN, trained for one epoch on generated 300x300 images, with Keras's log:
 *   npm run build && node dist/examples/train-cnn.js [--examples N]
 * The images are learnable on purpose (a bright square in the top-left corner for class 1), so the
 * accuracy climbs within the epoch. Swap `generated` for `openCatsVsDogs(...)` to use real photos.
 */
import { type Batch, type Dataset, layers, sequential } from '../lib/index.js';

function generatedImages(count: number, batchSize: number, size: number, seed: number): Dataset {
  let state = seed >>> 0;
  const random = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const labels = Float32Array.from({ length: count }, () => (random() < 0.5 ? 0 : 1));
  return {
    size: count,
    batchSize,
    elementShape: [size, size, 3],
    classNames: ['dark', 'square'],
    async *batches(): AsyncGenerator<Batch> {
      for (let start = 0; start < count; start += batchSize) {
        const n = Math.min(batchSize, count - start);
        const x = new Uint8Array(n * size * size * 3);
        for (let i = 0; i < x.length; i++) x[i] = 40 + ((i * 2654435761) >>> 26);
        for (let k = 0; k < n; k++) {
          if (labels[start + k] !== 1) continue;
          for (let r = 0; r < size / 3; r++) x.fill(230, (k * size + r) * size * 3, ((k * size + r) * size + size / 3) * 3);
        }
        yield { x, shape: [n, size, size, 3], y: labels.slice(start, start + n) };
      }
    },
  };
}

const examples = Number(process.argv[process.argv.indexOf('--examples') + 1]) || 640;
const cnn = sequential(
  [
    layers.conv2d({ filters: 32, kernelSize: 3, activation: 'relu', inputShape: [300, 300, 3] }),
    layers.maxPooling2d({ poolSize: 2 }),
    layers.conv2d({ filters: 32, kernelSize: 3, activation: 'relu' }),
    layers.maxPooling2d({ poolSize: 2 }),
    layers.conv2d({ filters: 64, kernelSize: 3, activation: 'relu' }),
    layers.maxPooling2d({ poolSize: 2 }),
    layers.conv2d({ filters: 64, kernelSize: 3, activation: 'relu' }),
    layers.maxPooling2d({ poolSize: 2 }),
    layers.conv2d({ filters: 128, kernelSize: 3, activation: 'relu' }),
    layers.maxPooling2d({ poolSize: 2 }),
    layers.flatten(),
    layers.dense({ units: 512, activation: 'relu' }),
    layers.dense({ units: 32, activation: 'relu' }),
    layers.dense({ units: 1, activation: 'sigmoid' }),
  ],
  { seed: 1 },
);
cnn.summary();
cnn.compile({ optimizer: 'adam', loss: 'binaryCrossentropy', metrics: ['accuracy'] });
const history = await cnn.fit(generatedImages(examples, 64, 300, 7), { epochs: 1, validationData: generatedImages(128, 64, 300, 8) });
console.log(JSON.stringify(history.history));
