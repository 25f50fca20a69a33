r"""Pre-train an encoder on environment frames, then hand it to any agent; or probe one linearly.

Pre-train on frames of a random policy, or of a trained agent with ``--agent-checkpoint``, with a
self-supervised method (SimCLR, MoCo, BYOL, SimSiam) on the encoder ``--encoder`` picks, or with a
generative model that hands over its own encoder:

    vae, beta_vae   the posterior's torso (nature for images, mlp for vectors)
    gan, wgan_gp    the discriminator's torso (nature for images, mlp for vectors)
    ddpm            the denoiser's deepest layer at a low noise level (ddpm)
    realnvp, nice   the flow's latent z = f(x), for vector observations (flow)

    python scripts/pretrain.py --method byol --env ALE/Pong-v5 --frames 20000 --out runs/pong_byol
    python scripts/train.py --env ALE/Pong-v5 --encoder-checkpoint runs/pong_byol/encoder.pt --freeze-encoder
    python scripts/train.py --agent dqn --env ALE/Pong-v5 --encoder-checkpoint runs/pong_byol/encoder.pt \
        --freeze-encoder --replay-features --standardize-features

Probe: fit a linear read-out (ridge, held-out R^2) from frozen features to the true state (Atari
object positions from the console RAM, or a classic-control env's state) for the pre-trained
encoder and for the same architecture at its initial, untrained weights:

    python scripts/pretrain.py --probe runs/pong_byol --env ALE/Pong-v5
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

from agents.base import Agent
from agents.cli import ArgumentParser, fail, parse_int, parse_json_dict
from agents.config import MAX_SEED, check_device
from agents.host_allocator import keep_freed_host_memory
from agents.runner import CHECKPOINT
from envs import check_env_id, is_atari, make_env
from envs.atari import atari_game_name
from representation.encoders import (default_encoder_name, is_image_space, load_encoder_weights, make_encoder,
                                     read_encoder_file, save_encoder)
from representation.generative import DDPM, GAN, NICE, VAE, GenerativeModel, RealNVP
from representation.ssl import make_ssl_method, ssl_method_names
from representation.ssl.collect import GroundTruth, Policy, collect_frames, state_ground_truth
from representation.ssl.probe import AtariRamEnv, RamPositions, probe_encoders, probe_table

VAE_METHODS = {"vae": 1.0, "beta_vae": 4.0}  # method -> default beta (Higgins et al. 2017 use beta = 4)
GAN_METHODS = {"gan": "non_saturating", "wgan_gp": "wgan_gp"}  # method -> GAN loss
FLOW_METHODS = {"realnvp": RealNVP, "nice": NICE}
GENERATIVE_METHODS = sorted(VAE_METHODS) + sorted(GAN_METHODS) + ["ddpm"] + sorted(FLOW_METHODS)
METHODS = ssl_method_names() + GENERATIVE_METHODS
ENCODER_FILE, CONFIG_FILE, PROBE_FILE = "encoder.pt", "config.json", "probe.json"
PROBE_FRAMES = 5_000


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="pretrain.py", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", choices=METHODS, help="pre-training objective")
    parser.add_argument("--env", required=True,
                        help="Gymnasium id or Atari game (ALE/Pong-v5, CartPole-v1); module:EnvId imports module first")
    parser.add_argument("--frames", type=parse_int, help=f"observations to collect (probe default: {PROBE_FRAMES})")
    parser.add_argument("--out", help="directory for encoder.pt, config.json and TensorBoard logs (one that "
                                      "holds a pre-training already is refused)")
    parser.add_argument("--probe", metavar="DIR", help="probe DIR/encoder.pt instead of pre-training")
    parser.add_argument("--agent-checkpoint", metavar="PATH",
                        help="collect frames with this agent's exploring policy (saved agent or run checkpoint.pt)")
    parser.add_argument("--encoder", default="auto", choices=["auto", "nature", "impala", "mlp"],
                        help="SSL encoder architecture (auto: nature for images, mlp for vectors); the generative "
                             "methods hand over their own (see above)")
    parser.add_argument("--encoder-options", type=parse_json_dict, default={}, metavar="JSON",
                        help='encoder constructor options, e.g. \'{"hidden_sizes": [64, 64]}\'; for the generative '
                             'methods, the model\'s (e.g. ddpm \'{"timesteps": 200}\')')
    parser.add_argument("--epochs", type=parse_int, default=10, help="passes over the frames (default: 10)")
    parser.add_argument("--batch-size", type=parse_int, default=256, help="minibatch size (default: 256)")
    parser.add_argument("--lr", type=float, help="Adam learning rate (default: 1e-3; gan and wgan_gp: 2e-4)")
    parser.add_argument("--beta", type=float, help="KL weight of vae / beta_vae (default: 1 / 4)")
    parser.add_argument("--latent-dim", type=parse_int, default=32, help="VAE and GAN latent size (default: 32)")
    parser.add_argument("--feature-timestep", type=parse_int,
                        help="ddpm: the noise level t whose denoiser features the encoder gives (default: T // 10)")
    parser.add_argument("--seed", type=parse_int, default=0,
                        help="seed for envs, policy, initial weights, minibatches (default: 0)")
    parser.add_argument("--device", default="cpu", help="torch device for the frames and the networks (default: cpu)")
    parser.add_argument("--num-envs", type=parse_int, default=8,
                        help="environments stepped together while collecting (default: 8)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


# ----------------------------------------------------------------------------- shared by both modes

def make_collection_env(args: argparse.Namespace, ground_truth: bool) -> tuple[Any, GroundTruth | None]:
    """The env frames come from and, when ``ground_truth``, the function reading its true state."""
    if ground_truth and is_atari(args.env):
        game = atari_game_name(args.env)
        truth = RamPositions(game)  # raises for games without RAM annotations, before any env starts
        return AtariRamEnv(game, args.num_envs, device=args.device), truth
    env = make_env(args.env, args.num_envs, seed=args.seed, device=args.device)
    if ground_truth and len(env.single_observation_space.shape or ()) != 1:
        env.close()
        raise ValueError(f"no ground truth for '{args.env}': probes need an annotated Atari game or vector "
                         "observations")
    return env, state_ground_truth if ground_truth else None


def load_policy(path: str | None, env: Any, device: str) -> Policy | None:
    """The exploring policy of a saved agent, checked against the env; None means a random policy."""
    if path is None:
        return None
    agent = Agent.load(path, device=device)
    if agent.observation_space.shape != env.single_observation_space.shape:
        raise ValueError(f"the agent in '{path}' sees observations of shape {agent.observation_space.shape}, "
                         f"'{env.single_observation_space}' gives {env.single_observation_space.shape}")
    agent.eval()
    return lambda obs: agent.act(obs, explore=True)


def write_json(path: Path, values: dict[str, Any]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(values, indent=2) + "\n")
    os.replace(temporary, path)


def check_common(args: argparse.Namespace) -> None:
    check_env_id(args.env)
    if not 0 <= args.seed <= MAX_SEED:
        raise ValueError(f"--seed must be in [0, {MAX_SEED}], got {args.seed}")
    if args.num_envs < 1:
        raise ValueError(f"--num-envs must be at least 1, got {args.num_envs}")
    if args.agent_checkpoint is not None and Path(args.agent_checkpoint).is_dir():
        raise ValueError(f"'{args.agent_checkpoint}' is a folder: give the agent checkpoint in it "
                         f"(a run's {CHECKPOINT} or agent.pt)")
    if args.agent_checkpoint is not None and not Path(args.agent_checkpoint).is_file():
        raise ValueError(f"agent checkpoint '{args.agent_checkpoint}' does not exist")


# ----------------------------------------------------------------------------- pre-training

def build_model(args: argparse.Namespace, space: Any) -> torch.nn.Module:
    """The model to fit: an SSL method on an encoder, or a generative model."""
    if not isinstance(space, gym.spaces.Box) or len(space.shape) not in (1, 3):
        raise ValueError(f"pre-training takes vector or image observations, '{args.env}' gives {space}")
    if args.feature_timestep is not None and args.method != "ddpm":
        raise ValueError(f"--feature-timestep is a ddpm setting; {args.method} does not take it")
    torch.manual_seed(args.seed)  # the probe rebuilds these initial weights as its "random" baseline
    if args.method in GENERATIVE_METHODS:
        return build_generative(args, space).to(args.device)
    if args.beta is not None:
        raise ValueError(f"--beta is a VAE setting; {args.method} does not take it")
    name = ssl_encoder_name(args, space)
    if name in ("nature", "impala") and not is_image_space(space):
        raise ValueError(f"--encoder {name} needs image observations [C, H, W], '{args.env}' gives {space.shape}")
    return make_ssl_method(args.method, make_encoder(name, space, **args.encoder_options)).to(args.device)


def ssl_encoder_name(args: argparse.Namespace, space: Any) -> str:
    return default_encoder_name(space) if args.encoder == "auto" else args.encoder


def build_generative(args: argparse.Namespace, space: Any) -> GenerativeModel:
    """The generative model of ``--method``, with ``--encoder-options`` as its constructor options."""
    image = len(space.shape) == 3
    if args.beta is not None and args.method not in VAE_METHODS:
        raise ValueError(f"--beta is a VAE setting; {args.method} does not take it")
    if args.method in FLOW_METHODS and image:
        raise ValueError(f"{args.method} models vectors; '{args.env}' gives images of shape {space.shape}, "
                         f"{math.prod(space.shape)} values for every coupling to transform")
    handed_over = {"ddpm": "ddpm", **dict.fromkeys(FLOW_METHODS, "flow")}.get(args.method, "nature" if image else "mlp")
    if args.encoder not in ("auto", handed_over):
        raise ValueError(f"{args.method} hands over a {handed_over} encoder for observations of shape {space.shape}, "
                         f"not --encoder {args.encoder}")
    if args.method in VAE_METHODS:
        model_class = VAE
        defaults = dict(latent_dim=args.latent_dim, beta=VAE_METHODS[args.method] if args.beta is None else args.beta,
                        likelihood="gaussian" if space.dtype.kind == "f" else "bernoulli")  # uint8 frames in [0, 1]
    elif args.method in GAN_METHODS:
        model_class = GAN
        defaults = dict(latent_dim=args.latent_dim, loss=GAN_METHODS[args.method],
                        **({"net": "nature"} if image else {}))
    else:
        model_class, defaults = (DDPM, {}) if args.method == "ddpm" else (FLOW_METHODS[args.method], {})
    try:
        model = model_class(space.shape, **{**defaults, **args.encoder_options})
    except TypeError as error:
        raise ValueError(f"bad --encoder-options for {args.method}: {error}") from None
    if args.feature_timestep is not None and not 0 <= args.feature_timestep < model.timesteps:
        raise ValueError(f"--feature-timestep must lie in [0, {model.timesteps}), got {args.feature_timestep}")
    return model


def pretrain(args: argparse.Namespace) -> None:
    if args.method is None or args.out is None or args.frames is None:
        raise ValueError("pre-training needs --method, --frames and --out (or --probe DIR to probe)")
    check_common(args)
    if args.batch_size < 2 or args.frames < args.batch_size:
        raise ValueError(f"--frames must be at least --batch-size (>= 2), got {args.frames} and {args.batch_size}")
    if args.epochs < 1 or (args.lr is not None and not args.lr > 0) or args.latent_dim < 1:
        raise ValueError(f"need --epochs >= 1, --lr > 0, --latent-dim >= 1, got {args.epochs}, {args.lr}, "
                         f"{args.latent_dim}")
    out = Path(args.out)
    taken = next((folder for folder in (out, *out.parents) if folder.exists() and not folder.is_dir()), None)
    if taken is not None:  # refused now, not once the frames are collected and the model fitted
        raise ValueError(f"--out '{out}' cannot be a folder: '{taken}' is a file")
    if (out / ENCODER_FILE).exists() or (out / CONFIG_FILE).exists():
        raise ValueError(f"--out '{out}' already holds a pre-trained encoder: pick another --out")
    env, _ = make_collection_env(args, ground_truth=False)
    try:
        space = env.single_observation_space
        policy = load_policy(args.agent_checkpoint, env, args.device)
        model = build_model(args, space)
        frames = collect_frames(env, args.frames, policy, seed=args.seed, progress=not args.no_progress).obs
    finally:
        env.close()

    started = time.time()
    out.mkdir(parents=True, exist_ok=True)
    fit = dict(epochs=args.epochs, batch_size=args.batch_size, log_dir=out, progress=not args.no_progress,
               seed=args.seed, **({} if args.lr is None else {"lr": args.lr}))
    if isinstance(model, GenerativeModel):
        choices = {} if args.feature_timestep is None else {"timestep": args.feature_timestep}
        encoder_name, encoder_options = model.fit(frames, **fit).export_encoder(out / ENCODER_FILE, **choices)
    else:
        encoder_name, encoder_options = ssl_encoder_name(args, space), dict(args.encoder_options)
        save_encoder(model.fit(frames, **fit).encoder, encoder_name, encoder_options, out / ENCODER_FILE)
    write_json(out / CONFIG_FILE, {
        **{key: value for key, value in vars(args).items() if key not in ("probe", "no_progress")},
        # --encoder-options as given stay under encoder_options; the encoder file's own, which a
        # generative model derives from its settings, under encoder_file_options
        "encoder": encoder_name, "encoder_file_options": encoder_options,
        "beta": getattr(model, "beta", None), "observation_shape": list(space.shape),
        "policy": "agent" if args.agent_checkpoint else "random", "wall_time_s": round(time.time() - started, 1)})
    print(f"{args.method} encoder ({encoder_name}) pre-trained on {args.frames} frames of {args.env} -> "
          f"{out / ENCODER_FILE}\nuse it with: python scripts/train.py --env {args.env} "
          f"--encoder-checkpoint {out / ENCODER_FILE} --freeze-encoder\n(with --agent dqn, add --replay-features "
          f"--standardize-features: updates run the head alone, on standardised features)")


# ----------------------------------------------------------------------------- probing

def probe(args: argparse.Namespace) -> None:
    check_common(args)
    frames = PROBE_FRAMES if args.frames is None else args.frames
    if frames < 50:
        raise ValueError(f"--frames must be at least 50 for a probe with a held-out split, got {frames}")
    directory = Path(args.probe)
    payload = read_encoder_file(directory / ENCODER_FILE)
    config_path = directory / CONFIG_FILE
    # The baseline is the pre-trained encoder's own starting point: same architecture, same seed.
    init_seed = json.loads(config_path.read_text()).get("seed", args.seed) if config_path.is_file() else args.seed
    env, truth = make_collection_env(args, ground_truth=True)
    try:
        space = env.single_observation_space
        pretrained = make_encoder(payload["name"], space, **payload["options"])
        load_encoder_weights(pretrained, payload, directory / ENCODER_FILE)
        torch.manual_seed(init_seed)
        untrained = make_encoder(payload["name"], space, **payload["options"])
        policy = load_policy(args.agent_checkpoint, env, args.device)
        data = collect_frames(env, frames, policy, seed=args.seed, ground_truth=truth, progress=not args.no_progress)
    finally:
        env.close()
    names = truth.names if isinstance(truth, RamPositions) else [f"state[{i}]" for i in range(data.truth.shape[1])]
    encoders = {"pretrained": pretrained.to(args.device), "random": untrained.to(args.device)}
    results = probe_encoders(encoders, data.obs, data.truth, names)
    write_json(directory / PROBE_FILE, {
        "env": args.env, "frames": frames, "seed": args.seed, "random_init_seed": init_seed,
        "policy": "agent" if args.agent_checkpoint else "random", "encoder": payload["name"],
        "split": "last 20% of frames held out (time order)", "r2": results})
    print(f"linear probe R^2 on held-out frames ({frames} frames of {args.env}, encoder {payload['name']}):")
    print(probe_table(results))
    print(f"-> {directory / PROBE_FILE}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        check_device(args.device)
        if args.probe is not None:
            probe(args)
        else:
            pretrain(args)
    except (ValueError, OSError) as error:  # OSError: the disk, full or read-only
        fail(str(error))
    return 0


if __name__ == "__main__":
    keep_freed_host_memory(large_blocks=True)  # image models allocate and free hundreds of MB a step
    sys.exit(main())
