"""Shared-prefix packing of preference pairs: one sequence per pair instead of two.

TRL's preference collator gives ``2B`` right-padded rows, ``[chosen rows; rejected rows]``, each
``prompt + completion``. The prompt (and any leading tokens the two completions share) is the
same in both rows of a pair, so its forward pass is done twice. :func:`pack_pairs` turns the
batch into ``B`` rows ``prompt+chosen | rejected-suffix``:

    packed row  = ids_c[:len_c] ++ ids_r[s:len_r]
    positions   = 0 .. len_c-1   ++ s .. len_r-1          (RoPE sees the original positions)
    attention   = causal inside each segment; rejected tokens also see the shared prefix [0, s)

where ``s`` is the length of the common prefix of the two token sequences. Hidden states of the
packed row are identical (up to float rounding) to those of the two separate causal forwards,
so the per-token log-probs are the same; :attr:`PackedPairs.src_row` / :attr:`PackedPairs.src_pos`
map every completion token of TRL's layout to the packed hidden state that predicts it, in the
row-major order of TRL's label mask (``labels[:, 1:] != -100``), so the results can be scattered
straight back into TRL's ``[2B, L-1]`` layout.

For a 512-token prompt and two 384-token completions this is 1,280 tokens per pair instead of
1,792 (-29 %), and rows carry no padding beyond the longest pair of the micro-batch.

:func:`varlen_layout` goes one step further for variable-length attention kernels: all pairs
back to back in one padding-free row, with the query and key/value segments a varlen kernel
needs (chosen: ``[0, lc)`` attending causally to itself; rejected suffix: attending to the shared
prefix and causally to itself, bottom-right aligned).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["PackedPairs", "VarlenLayout", "pack_pairs", "varlen_layout"]

_ALIGN = 16
"""Packed rows are padded to a multiple of this: memory-efficient attention wants aligned masks."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PackedPairs:
    """A preference batch packed one pair per row (see the module docstring).

    Shapes: ``B`` pairs, ``N`` packed length (multiple of 16), ``T`` selected completion tokens.
    """

    input_ids: torch.Tensor
    """[B, N] token ids (padding: the pair's last token, masked out)."""
    position_ids: torch.Tensor
    """[B, N] positions in the original sequences (0 on padding)."""
    src_row: torch.Tensor
    """[T] packed row of the hidden state that predicts each selected token."""
    src_pos: torch.Tensor
    """[T] packed position of that hidden state."""
    targets: torch.Tensor
    """[T] the token ids being predicted."""
    label_mask: torch.Tensor
    """[2B, L-1] bool, TRL's shifted label mask; True positions, row-major, correspond to the T tokens."""
    shared: tuple[int, ...]
    """Shared prefix length ``s`` of every pair."""
    segments: tuple[tuple[int, int, int], ...]
    """Per row ``(lc, s, n)``: chosen part ``[0, lc)``, shared prefix ``[0, s)``, real length ``n``."""
    tokens: int
    """Real (unpadded) tokens in the packed rows."""

    def attention_mask(self) -> torch.Tensor:
        """[B, 1, N, N] bool, True = may attend (built on demand: the varlen layout needs none).

        Causal inside each segment; rejected-suffix tokens also see the shared prefix; padding
        attends only to itself (no empty softmax rows).
        """
        device = self.input_ids.device
        pairs, width = self.input_ids.shape
        seg = torch.full((pairs, width), 2, dtype=torch.long)  # 0 chosen/prefix, 1 rejected suffix, 2 padding
        for i, (lc, _, n) in enumerate(self.segments):
            seg[i, :lc], seg[i, lc:n] = 0, 1
        seg_d, idx = seg.to(device), torch.arange(width, device=device)
        shared_d = torch.tensor(self.shared, device=device)
        q_seg, k_seg = seg_d[:, :, None], seg_d[:, None, :]
        causal = idx[None, :, None] >= idx[None, None, :]
        same = q_seg == k_seg
        prefix = (q_seg == 1) & (idx[None, None, :] < shared_d[:, None, None])
        allowed = causal & (
            ((same | prefix) & (q_seg != 2)) | ((q_seg == 2) & (idx[None, :, None] == idx[None, None, :]))
        )
        return allowed[:, None]


def _common_prefix(a: torch.Tensor, b: torch.Tensor) -> int:
    n = min(a.numel(), b.numel())
    if n == 0:
        return 0
    diff = (a[:n] != b[:n]).nonzero()
    return int(diff[0, 0]) if diff.numel() else n


def pack_pairs(input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> PackedPairs:
    """Pack TRL's ``[chosen; rejected]`` batch into one shared-prefix row per pair.

    Args:
        input_ids: [2B, L] right-padded ids, chosen rows first (TRL's ``DataCollatorForPreference``).
        attention_mask: [2B, L] 1 on real tokens (a prefix of each row), 0 on padding.
        labels: [2B, L] the ids on completion tokens, -100 elsewhere.

    Returns:
        The packed batch, on the device of ``input_ids``.

    Raises:
        ValueError: an odd number of rows, or a row whose real tokens are not a prefix (left padding).
    """
    rows, length = input_ids.shape
    if rows % 2:
        raise ValueError(f"a preference batch has an even number of rows (chosen then rejected), got {rows}")
    device = input_ids.device
    pairs = rows // 2
    ids_cpu = input_ids.detach().cpu()
    mask_cpu = attention_mask.detach().cpu().bool()
    lens = mask_cpu.sum(1)
    if not bool((mask_cpu == (torch.arange(length)[None, :] < lens[:, None])).all()):
        raise ValueError("the shared-prefix path needs right-padded rows (attention_mask 1…1 0…0)")
    label_mask = labels[:, 1:] != -100

    shared: list[int] = []
    seqs: list[torch.Tensor] = []
    poss: list[torch.Tensor] = []
    for i in range(pairs):
        lc, lr = int(lens[i]), int(lens[pairs + i])
        c, r = ids_cpu[i, :lc], ids_cpu[pairs + i, :lr]
        s = min(_common_prefix(c, r), lc, lr)
        shared.append(s)
        seqs.append(torch.cat([c, r[s:]]))
        poss.append(torch.cat([torch.arange(lc), torch.arange(s, lr)]))
    real = max(int(x.numel()) for x in seqs)
    width = -(-real // _ALIGN) * _ALIGN
    ids = torch.zeros(pairs, width, dtype=input_ids.dtype)
    pos = torch.zeros(pairs, width, dtype=torch.long)
    for i, (x, p) in enumerate(zip(seqs, poss, strict=True)):
        n = x.numel()
        ids[i, :n], pos[i, :n] = x, p
        ids[i, n:] = x[-1] if n else 0

    # Map every completion token of TRL's [2B, L-1] layout to the packed hidden state predicting it.
    lm_cpu = label_mask.detach().cpu()
    src_row: list[torch.Tensor] = []
    src_pos: list[torch.Tensor] = []
    for row in range(rows):
        j = lm_cpu[row].nonzero()[:, 0]  # hidden position j predicts token j+1
        pair = row % pairs
        if row < pairs:
            packed = j
        else:
            s, lc = shared[pair], int(lens[pair])
            packed = torch.where(j < s, j, lc + j - s)
        src_row.append(torch.full_like(j, pair))
        src_pos.append(packed)
    targets = labels[:, 1:][label_mask]

    return PackedPairs(
        input_ids=ids.to(device),
        position_ids=pos.to(device),
        src_row=torch.cat(src_row).to(device),
        src_pos=torch.cat(src_pos).to(device),
        targets=targets,
        label_mask=label_mask,
        shared=tuple(shared),
        segments=tuple((int(lens[i]), shared[i], int(seqs[i].numel())) for i in range(pairs)),
        tokens=sum(int(x.numel()) for x in seqs),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class VarlenLayout:
    """A packed batch as one padding-free row for variable-length attention.

    ``T`` real tokens (the rows of :class:`PackedPairs` back to back), ``S`` query segments
    (chosen part and rejected suffix of every pair), ``K`` gathered key/value positions.
    """

    input_ids: torch.Tensor
    """[1, T] token ids."""
    position_ids: torch.Tensor
    """[1, T] positions in the original sequences."""
    cu_seq_q: torch.Tensor
    """[S+1] int32 cumulative query segment lengths (segments are contiguous in the row)."""
    kv_index: torch.Tensor
    """[K] long: the row positions whose keys/values each segment sees, segment after segment."""
    cu_seq_k: torch.Tensor
    """[S+1] int32 cumulative key/value segment lengths in ``kv_index``."""
    max_q: int
    max_k: int
    src: torch.Tensor
    """[T_sel] row position of the hidden state that predicts each selected token (see PackedPairs)."""


def varlen_layout(packed: PackedPairs) -> VarlenLayout:
    """Lay ``packed`` out as one padding-free row with varlen attention segments."""
    device = packed.input_ids.device
    ids_rows, pos_rows, kv, cu_q, cu_k = [], [], [], [0], [0]
    starts: list[int] = []
    start = max_q = max_k = 0
    for row, (lc, s, n) in enumerate(packed.segments):
        starts.append(start)
        ids_rows.append(packed.input_ids[row, :n])
        pos_rows.append(packed.position_ids[row, :n])
        kv.append(torch.arange(start, start + lc))
        cu_q.append(cu_q[-1] + lc)
        cu_k.append(cu_k[-1] + lc)
        max_q, max_k = max(max_q, lc), max(max_k, lc)
        if n > lc:
            kv.append(torch.arange(start, start + s))
            kv.append(torch.arange(start + lc, start + n))
            cu_q.append(cu_q[-1] + n - lc)
            cu_k.append(cu_k[-1] + s + n - lc)
            max_q, max_k = max(max_q, n - lc), max(max_k, s + n - lc)
        start += n
    starts_d = torch.tensor(starts, device=device, dtype=torch.long)
    return VarlenLayout(
        input_ids=torch.cat(ids_rows)[None],
        position_ids=torch.cat(pos_rows)[None],
        cu_seq_q=torch.tensor(cu_q, dtype=torch.int32, device=device),
        kv_index=torch.cat(kv).to(device),
        cu_seq_k=torch.tensor(cu_k, dtype=torch.int32, device=device),
        max_q=max_q,
        max_k=max_k,
        src=starts_d[packed.src_row] + packed.src_pos,
    )
