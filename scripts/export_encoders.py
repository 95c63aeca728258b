#!/usr/bin/env python3
"""Build the frozen ResNet-18 encoders that `dyncim` runs through ONNX Runtime.

For each modality (audio spectrograms [1, 64, 64], images [3, 32, 32]) this script either loads
a user's checkpoint or pretrains a ResNet-18 on the .npy arrays the TypeScript side wrote, then
exports it to ONNX with one input `input` [batch, C, H, W] and two outputs: `features`
[batch, 512] (after global average pooling, before the classifier) and `logits` [batch, 10].
Next to each `<out>/<modality>-resnet18.onnx` it writes a provenance `.json`.

Run it with Debian's python, which has torch 1.13 and torchvision 0.14 (CPU only):

    /usr/bin/python3 scripts/export_encoders.py --data .cache/pretrain --out models

(`dyncim encoders build` writes the arrays with the TypeScript preprocessing and runs this.)

Pretraining arrays, one folder per modality:

    DIR/<modality>/inputs.npy   float32 [N, C, H, W], exactly what inference will see
    DIR/<modality>/labels.npy   integer [N], classes 0..9
    DIR/<modality>/split.json   {"train": [indices], "heldout": [indices]}
"""

import argparse
import datetime
import hashlib
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

SCRIPT_PATH = 'scripts/export_encoders.py'
PROVENANCE_FORMAT = 'dyncim-encoder-provenance/1'
NUM_CLASSES = 10
FEATURE_WIDTH = 512  # ResNet-18's width after global average pooling
ONNX_OPSET = 13

# channels are fixed by the first convolution; height and width come from the data
MODALITY_SHAPES = {
    'audio': (1, 64, 64),
    'visual': (3, 32, 32),
}

# epochs sized so the whole setup stays well inside 15 minutes on 2 CPU cores: about 100 s per
# modality on a quiet machine (see models/README.md)
DEFAULT_EPOCHS = {
    'audio': 8,
    'visual': 12,
}

# the probe batch written into provenance lets the TypeScript test compare ONNX Runtime's
# output with torch's for the real encoder: x[i] = (i mod 17) / 17 - 0.5 in C order
PROBE_BATCH = 2
PROBE_PERIOD = 17
PROBE_VALUES_KEPT = 8


class ExportError(Exception):
    """A problem the person running the script can fix; printed as one line, exit status 2."""


# ---------------------------------------------------------------------------------------------
# model


class EncoderWithLogits(nn.Module):
    """ResNet-18 whose forward returns (features, logits), so ONNX gets both outputs."""

    def __init__(self, channels):
        super().__init__()
        self.backbone = torchvision.models.resnet18(num_classes=NUM_CLASSES)

        if channels != 3:
            # same kernel, stride and padding as torchvision's conv1, fewer input channels
            self.backbone.conv1 = nn.Conv2d(
                channels, 64, kernel_size=7, stride=2, padding=3, bias=False)

    def forward(self, x):
        net = self.backbone
        x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        x = net.layer4(net.layer3(net.layer2(net.layer1(x))))
        features = torch.flatten(net.avgpool(x), 1)  # [batch, 512]
        return features, net.fc(features)  # logits [batch, 10]


# ---------------------------------------------------------------------------------------------
# data


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def load_array(path):
    if not os.path.isfile(path):
        raise ExportError(f'{path}: file not found')
    with open(path, 'rb') as handle:
        if handle.read(6) != b'\x93NUMPY':
            raise ExportError(f'{path}: not a .npy file (bad magic bytes)')
    try:
        return np.load(path, allow_pickle=False)
    except Exception as error:  # numpy raises ValueError, OSError, EOFError... for bad files
        raise ExportError(f'{path}: not a readable .npy file ({error})') from None


def load_split(path, count):
    if not os.path.isfile(path):
        raise ExportError(f'{path}: file not found')
    try:
        with open(path) as handle:
            split = json.load(handle)
    except ValueError as error:
        raise ExportError(f'{path}: not valid JSON ({error})') from None

    parts = {}
    for name in ('train', 'heldout'):
        indices = split.get(name) if isinstance(split, dict) else None
        if not isinstance(indices, list) or not all(isinstance(i, int) for i in indices):
            raise ExportError(f'{path}: expected "{name}" to be a list of integer indices')
        if indices and (min(indices) < 0 or max(indices) >= count):
            raise ExportError(
                f'{path}: "{name}" indices must lie in [0, {count - 1}], '
                f'found {min(indices)}..{max(indices)}')
        parts[name] = np.asarray(indices, dtype=np.int64)

    overlap = np.intersect1d(parts['train'], parts['heldout'])
    if overlap.size:
        raise ExportError(f'{path}: {overlap.size} indices are in both train and heldout')
    if parts['train'].size == 0:
        raise ExportError(f'{path}: the train split is empty')
    return parts


def load_modality_data(data_dir, modality):
    """Reads and checks one modality's arrays; returns a dict with tensors and a description."""
    folder = os.path.join(data_dir, modality)
    inputs_path = os.path.join(folder, 'inputs.npy')
    labels_path = os.path.join(folder, 'labels.npy')
    inputs = load_array(inputs_path)
    labels = load_array(labels_path)

    channels = MODALITY_SHAPES[modality][0]
    if inputs.ndim != 4 or inputs.shape[1] != channels:
        raise ExportError(
            f'{inputs_path}: expected shape [N, {channels}, H, W] for {modality}, '
            f'found {list(inputs.shape)}')
    if inputs.dtype != np.float32:
        raise ExportError(f'{inputs_path}: expected dtype float32, found {inputs.dtype}')
    if labels.ndim != 1 or labels.shape[0] != inputs.shape[0]:
        raise ExportError(
            f'{labels_path}: expected shape [{inputs.shape[0]}] to match {inputs_path}, '
            f'found {list(labels.shape)}')
    if labels.dtype.kind not in 'iu':
        raise ExportError(f'{labels_path}: expected an integer dtype, found {labels.dtype}')
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise ExportError(
            f'{labels_path}: labels must lie in [0, {NUM_CLASSES - 1}], '
            f'found {labels.min()}..{labels.max()}')
    if not np.isfinite(inputs).all():
        bad = int(np.argwhere(~np.isfinite(inputs.reshape(inputs.shape[0], -1)))[0][0])
        raise ExportError(f'{inputs_path}: sample {bad} holds NaN or infinite values')

    split = load_split(os.path.join(folder, 'split.json'), inputs.shape[0])
    train_labels = labels[split['train']]
    description = {
        'folder': os.path.abspath(folder),
        'inputsSha256': sha256_of(inputs_path),
        'inputShape': list(inputs.shape[1:]),
        'count': int(inputs.shape[0]),
        'trainCount': int(split['train'].size),
        'heldoutCount': int(split['heldout'].size),
        'trainClassCounts': np.bincount(train_labels, minlength=NUM_CLASSES).tolist(),
    }
    return {
        'inputs': torch.from_numpy(inputs),
        'labels': torch.from_numpy(labels.astype(np.int64)),
        'split': split,
        'description': description,
    }


def augment(batch, generator, max_shift):
    """Light augmentation: shift each sample by up to max_shift pixels, zero-filled."""
    if max_shift == 0:
        return batch

    height, width = batch.shape[2], batch.shape[3]
    padded = F.pad(batch, (max_shift, max_shift, max_shift, max_shift))
    offsets = torch.randint(0, 2 * max_shift + 1, (batch.shape[0], 2), generator=generator)
    shifted = torch.empty_like(batch)
    for i, (dy, dx) in enumerate(offsets.tolist()):
        shifted[i] = padded[i, :, dy:dy + height, dx:dx + width]
    return shifted


# ---------------------------------------------------------------------------------------------
# training


def evaluate(model, inputs, labels, indices, batch_size):
    if indices.size == 0:
        return None

    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, indices.size, batch_size):
            chosen = torch.from_numpy(indices[start:start + batch_size])
            _, logits = model(inputs[chosen])
            correct += int((logits.argmax(dim=1) == labels[chosen]).sum())
    return correct / indices.size


def pretrain(model, data, args, modality, epochs):
    """SGD with a one-cycle schedule: reaches a useful encoder in a few epochs from scratch."""
    inputs, labels, split = data['inputs'], data['labels'], data['split']
    train_indices = split['train']
    steps_per_epoch = (train_indices.size + args.batch_size - 1) // args.batch_size
    generator = torch.Generator().manual_seed(args.seed)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.lr, epochs=epochs, steps_per_epoch=steps_per_epoch)
    history = []

    for epoch in range(1, epochs + 1):
        model.train()
        started = time.time()
        order = torch.from_numpy(train_indices)[torch.randperm(train_indices.size,
                                                               generator=generator)]
        loss_total, correct, seen = 0.0, 0, 0

        for start in range(0, order.numel(), args.batch_size):
            chosen = order[start:start + args.batch_size]
            if chosen.numel() < 2:
                continue  # BatchNorm cannot train on one sample when layer4's output is 1x1
            batch = augment(inputs[chosen], generator, args.max_shift)
            _, logits = model(batch)
            loss = F.cross_entropy(logits, labels[chosen])

            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()

            loss_total += float(loss) * chosen.numel()
            correct += int((logits.argmax(dim=1) == labels[chosen]).sum())
            seen += chosen.numel()

        seconds = time.time() - started
        heldout = evaluate(model, inputs, labels, split['heldout'], args.batch_size)
        record = {
            'epoch': epoch,
            'trainLoss': round(loss_total / max(seen, 1), 4),
            'trainAccuracy': round(correct / max(seen, 1), 4),
            'heldoutAccuracy': None if heldout is None else round(heldout, 4),
            'seconds': round(seconds, 1),
        }
        history.append(record)
        print(f'{modality} epoch {epoch}/{epochs}: loss {record["trainLoss"]:.4f}, '
              f'train acc {record["trainAccuracy"]:.3f}, heldout acc '
              f'{"n/a" if heldout is None else f"{heldout:.3f}"}, {seconds:.1f} s', flush=True)

    return history


# ---------------------------------------------------------------------------------------------
# checkpoints


def shape_mismatches(model_state, checkpoint_state):
    return [
        f'{key}: checkpoint {list(value.shape)}, model {list(model_state[key].shape)}'
        for key, value in checkpoint_state.items()
        if key in model_state and hasattr(value, 'shape') and value.shape != model_state[key].shape
    ]


def extract_state_dict(loaded, path):
    if isinstance(loaded, dict):
        for key in ('state_dict', 'model'):
            if isinstance(loaded.get(key), dict):
                loaded = loaded[key]
                break
    if not isinstance(loaded, dict) or not loaded:
        raise ExportError(f'{path}: expected a state_dict (or a checkpoint with a "state_dict" '
                          f'or "model" key), found {type(loaded).__name__}')

    # checkpoints saved from nn.DataParallel prefix every key
    return {key[len('module.'):] if key.startswith('module.') else key: value
            for key, value in loaded.items()}


def load_checkpoint(model, path):
    """Loads a torchvision ResNet-18 state_dict into model.backbone; reports key problems."""
    if not os.path.isfile(path):
        raise ExportError(f'{path}: checkpoint not found')
    try:
        # weights_only: tensors and plain containers, no arbitrary pickled code
        loaded = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # pickle and zip errors vary by file; all mean "unreadable"
        reason = str(error).split('. ')[0]
        raise ExportError(f'{path}: cannot read checkpoint ({reason}); it must hold tensors '
                          'only: save model.state_dict(), not the whole model') from None

    state = extract_state_dict(loaded, path)
    model_state = model.backbone.state_dict()
    mismatched = shape_mismatches(model_state, state)
    if mismatched:
        raise ExportError(f'{path}: {len(mismatched)} weights have the wrong shape: '
                          + '; '.join(mismatched[:5]))

    result = model.backbone.load_state_dict(state, strict=False)
    # BatchNorm's step counters do not affect inference; older checkpoints lack them
    missing = [key for key in result.missing_keys if not key.endswith('num_batches_tracked')]
    if missing:
        raise ExportError(
            f'{path}: {len(missing)} ResNet-18 weights are missing, e.g. '
            f'{", ".join(missing[:5])} (unexpected keys: '
            f'{", ".join(result.unexpected_keys[:5]) or "none"})')
    if result.unexpected_keys:
        print(f'warning: {path}: ignored {len(result.unexpected_keys)} keys ResNet-18 does not '
              f'use, e.g. {", ".join(result.unexpected_keys[:5])}', file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# export


def probe_input(input_shape):
    count = PROBE_BATCH * int(np.prod(input_shape))
    values = (np.arange(count) % PROBE_PERIOD) / PROBE_PERIOD - 0.5
    return torch.from_numpy(values.astype(np.float32).reshape(PROBE_BATCH, *input_shape))


def export_onnx(model, input_shape, target):
    """Exports to a temporary sibling, checks it, then renames it into place."""
    temporary = f'{target}.tmp-{os.getpid()}'
    model.eval()

    try:
        torch.onnx.export(
            model, torch.zeros(1, *input_shape), temporary,
            input_names=['input'], output_names=['features', 'logits'],
            dynamic_axes={'input': {0: 'batch'}, 'features': {0: 'batch'},
                          'logits': {0: 'batch'}},
            opset_version=ONNX_OPSET, do_constant_folding=True)
        verify_onnx(temporary, input_shape)
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def declared_shape(value_info):
    dims = value_info.type.tensor_type.shape.dim
    return [dim.dim_value if dim.HasField('dim_value') else dim.dim_param for dim in dims]


def verify_onnx(path, input_shape):
    """onnx.checker plus the declared names and shapes the TypeScript side relies on."""
    import onnx

    model = onnx.load(path)
    onnx.checker.check_model(model)
    found = {value.name: declared_shape(value) for value in
             list(model.graph.input) + list(model.graph.output)}
    expected = {
        'input': ['batch', *input_shape],
        'features': ['batch', FEATURE_WIDTH],
        'logits': ['batch', NUM_CLASSES],
    }
    for name, shape in expected.items():
        if found.get(name) != shape:
            raise ExportError(f'{path}: exported {name} has shape {found.get(name)}, '
                              f'expected {shape}')


def onnx_version():
    import onnx

    return onnx.__version__


def write_json_atomic(target, value):
    temporary = f'{target}.tmp-{os.getpid()}'
    with open(temporary, 'w') as handle:
        json.dump(value, handle, indent=2)
        handle.write('\n')
    os.replace(temporary, target)


def probe_record(model, input_shape):
    with torch.no_grad():
        features, logits = model.eval()(probe_input(input_shape))
    return {
        'input': f'x[i] = (i mod {PROBE_PERIOD}) / {PROBE_PERIOD} - 0.5, '
                 f'shape [{PROBE_BATCH}, {", ".join(map(str, input_shape))}], C order',
        'featuresFirst': features[0, :PROBE_VALUES_KEPT].tolist(),
        'featuresSumPerRow': features.sum(dim=1).tolist(),
        'logits': logits.tolist(),
    }


# ---------------------------------------------------------------------------------------------
# main


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description='Pretrain or load ResNet-18 encoders and export them to ONNX.')
    parser.add_argument('--data', help='folder with <modality>/{inputs.npy,labels.npy,split.json}')
    parser.add_argument('--checkpoint-audio', help='state_dict to load for the audio encoder')
    parser.add_argument('--checkpoint-visual', help='state_dict to load for the visual encoder')
    parser.add_argument('--modalities', default='audio,visual', help='comma-separated subset')
    parser.add_argument('--epochs', type=int,
                        help='pretraining epochs (default: audio 8, visual 12, '
                             'about 100 s each on 2 quiet cores)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--lr', type=float, default=0.05, help='peak learning rate')
    parser.add_argument('--max-shift', type=int, default=2,
                        help='augmentation: largest random shift in pixels (0 turns it off)')
    parser.add_argument('--out', default='models', help='folder for the .onnx and .json files')
    args = parser.parse_args(argv)

    args.modalities = [name.strip() for name in args.modalities.split(',') if name.strip()]
    unknown = [name for name in args.modalities if name not in MODALITY_SHAPES]
    if unknown or not args.modalities:
        parser.error(f'--modalities: expected a subset of {",".join(MODALITY_SHAPES)}, '
                     f'received {",".join(unknown) or "nothing"}')
    if args.epochs is not None and args.epochs < 1:
        parser.error(f'--epochs: expected a positive integer, received {args.epochs}')
    if args.batch_size < 1:
        parser.error(f'--batch-size: expected a positive integer, received {args.batch_size}')
    return args


def load_all_data(args):
    """Checks every modality's arrays before any training, so a bad file fails fast."""
    loaded = {}
    for modality in args.modalities:
        checkpoint = getattr(args, f'checkpoint_{modality}')
        if checkpoint is None and args.data is None:
            raise ExportError(f'{modality}: pass --data DIR to pretrain or '
                              f'--checkpoint-{modality} PATH to load weights')
        loaded[modality] = load_modality_data(args.data, modality) if args.data else None
    return loaded


def build_modality(modality, data, args):
    checkpoint = getattr(args, f'checkpoint_{modality}')

    # seed per modality so building one modality alone gives the same encoder as building both
    torch.manual_seed(args.seed)
    input_shape = tuple(data['description']['inputShape']) if data else MODALITY_SHAPES[modality]
    model = EncoderWithLogits(input_shape[0])
    started = time.time()
    history = []
    epochs = 0

    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
        print(f'{modality}: loaded {checkpoint}', flush=True)
    else:
        epochs = args.epochs or DEFAULT_EPOCHS[modality]
        print(f'{modality}: pretraining {epochs} epochs on {data["description"]["trainCount"]} '
              f'inputs of shape {list(input_shape)}', flush=True)
        history = pretrain(model, data, args, modality, epochs)

    heldout = None
    if data is not None:
        heldout = evaluate(model, data['inputs'], data['labels'], data['split']['heldout'],
                           args.batch_size)

    onnx_path = os.path.join(args.out, f'{modality}-resnet18.onnx')
    export_onnx(model, input_shape, onnx_path)
    provenance = {
        'format': PROVENANCE_FORMAT,
        'modality': modality,
        'script': SCRIPT_PATH,
        'args': {
            'modalities': args.modalities, 'epochs': epochs, 'seed': args.seed,
            'batchSize': args.batch_size, 'lr': args.lr, 'maxShift': args.max_shift,
            'checkpoint': os.path.abspath(checkpoint) if checkpoint else None,
        },
        'source': 'checkpoint' if checkpoint else 'pretrained',
        'seed': args.seed,
        'data': data['description'] if data else None,
        'heldoutAccuracy': heldout,
        'epochs': epochs,
        'history': history,
        'trainingSeconds': round(time.time() - started, 1),
        'versions': {'torch': torch.__version__, 'torchvision': torchvision.__version__,
                     'onnx': onnx_version(), 'numpy': np.__version__},
        'onnx': {'file': os.path.basename(onnx_path), 'sha256': sha256_of(onnx_path),
                 'bytes': os.path.getsize(onnx_path), 'opset': ONNX_OPSET},
        'inputName': 'input',
        'inputShape': list(input_shape),
        'outputs': {'features': ['batch', FEATURE_WIDTH], 'logits': ['batch', NUM_CLASSES]},
        'featureWidth': FEATURE_WIDTH,
        'probe': probe_record(model, input_shape),
        'createdAt': datetime.datetime.now(datetime.timezone.utc).isoformat(),
    }
    write_json_atomic(os.path.join(args.out, f'{modality}-resnet18.json'), provenance)
    accuracy = 'n/a' if heldout is None else f'{heldout:.3f}'
    print(f'{modality}: wrote {onnx_path} ({provenance["onnx"]["bytes"] / 1e6:.1f} MB), '
          f'heldout accuracy {accuracy}', flush=True)


def report_model_sizes(folder):
    sizes = {name: os.path.getsize(os.path.join(folder, name))
             for name in sorted(os.listdir(folder)) if name.endswith('.onnx')}
    total = sum(sizes.values()) / 1e6
    print(f'{folder}/*.onnx: {len(sizes)} files, {total:.1f} MB in all '
          '(built by the setup command, not committed)', flush=True)


def main(argv):
    args = parse_args(argv)
    torch.set_num_threads(os.cpu_count() or 1)

    try:
        loaded = load_all_data(args)
        os.makedirs(args.out, exist_ok=True)
        for modality in args.modalities:
            build_modality(modality, loaded[modality], args)
    except ExportError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2

    report_model_sizes(args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
