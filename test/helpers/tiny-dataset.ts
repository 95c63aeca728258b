import * as fs from 'fs';
import * as path from 'path';
import { writeNpy } from '../../orchestrator/util/npy';

/**
 * Small dataset folders for the feature-extraction tests: a dataset.json that the dataset
 * module's reader accepts, and one `<modality>.npy` per modality, written as given.
 */

export interface TinyModality {
  name: string;
  /** [C, H, W]. */
  inputShape: number[];
  /** Preprocessing version recorded in dataset.json. */
  preprocessing: string;
  /** [N * C * H * W] values; omitted: no .npy is written. */
  inputs?: Float32Array;
}

/** Writes dataset.json (and the arrays) for `labels.length` samples, all in the train split. */
export function writeTinyDataset(dir: string, labels: number[], modalities: TinyModality[]) {
  fs.mkdirSync(dir, { recursive: true });
  const manifest = {
    format: 'dyncim-dataset/1',
    name: 'tiny',
    seed: 0,
    classes: ['zero', 'one'],
    modalities: modalities.map(({ name, inputShape, preprocessing }) => ({
      name,
      inputShape,
      preprocessing,
    })),
    samples: labels.map((label, index) => ({ index, label, split: 'train', sources: {} })),
  };
  fs.writeFileSync(path.join(dir, 'dataset.json'), JSON.stringify(manifest));

  for (const modality of modalities) {
    if (!modality.inputs) continue;
    const shape = [labels.length, ...modality.inputShape];
    writeNpy(path.join(dir, `${modality.name}.npy`), { data: modality.inputs, shape });
  }
}
