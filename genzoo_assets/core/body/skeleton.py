"""Names of the SMAL skeleton and of the Animal3D keypoints.

The joint order is SMAL's (shared by SMAL and SMAL+). Parents of a loaded model always come from
its own ``kintree_table``; ``SMAL_PARENTS`` (SMAL's ``kintree_table[0]``, root -1) is the tree the
procedural model is built with and the one that tells SMAL topology apart (``animer_keypoints``).
"""

SMAL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "pelvis0", "spine", "spine0", "spine1", "spine2", "spine3",
    "LLeg1", "LLeg2", "LLeg3", "LFoot",
    "RLeg1", "RLeg2", "RLeg3", "RFoot",
    "Neck", "Head",
    "LLegBack1", "LLegBack2", "LLegBack3", "LFootBack",
    "RLegBack1", "RLegBack2", "RLegBack3", "RFootBack",
    "Tail1", "Tail2", "Tail3", "Tail4", "Tail5", "Tail6", "Tail7",
    "Mouth", "LEar", "REar",
)

SMAL_PARENTS: tuple[int, ...] = (
    -1, 0, 1, 2, 3, 4, 5,
    6, 7, 8, 9,
    6, 11, 12, 13,
    6, 15,
    0, 17, 18, 19,
    0, 21, 22, 23,
    0, 25, 26, 27, 28, 29, 30,
    16, 16, 16,
)

NUM_JOINTS = len(SMAL_JOINT_NAMES)  # 35: the root plus 34 posed joints
NUM_BODY_JOINTS = NUM_JOINTS - 1

# Animal3D's 26 keypoints, in its order; each is the mean of a group of mesh vertices.
KEYPOINT_NAMES: tuple[str, ...] = (
    "left_eye", "right_eye", "mouth_mid", "left_front_paw", "right_front_paw",
    "left_back_paw", "right_back_paw", "tail_base", "left_front_thigh", "right_front_thigh",
    "left_back_thigh", "right_back_thigh", "left_shoulder", "right_shoulder",
    "left_front_knee", "right_front_knee", "left_back_knee", "right_back_knee",
    "neck", "tail_end", "left_ear", "right_ear", "left_mouth", "right_mouth", "nose", "tail_mid",
)
NUM_KEYPOINTS = len(KEYPOINT_NAMES)
