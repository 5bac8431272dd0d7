"""tools/list_taps.py: every tap of a config's models, the config's own taps among them."""
import os.path as osp
import re
import subprocess
import sys

import pytest
from mmengine.config import Config

from mmkd.distill.engine import as_taps
from mmkd.distill.tap_listing import TapInfo, distillation_parts

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def list_taps(*args):
    return subprocess.run([sys.executable, osp.join(REPO, 'tools', 'list_taps.py'), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600)


def config_taps(config):
    """The taps the config's terms use, as the listing writes them."""
    _, _, terms = distillation_parts(Config.fromfile(config))
    return ({TapInfo(t, ()).spec() for term in terms for t in as_taps(term.get('student'))},
            {TapInfo(t, ()).spec() for term in terms for t in as_taps(term.get('teacher'))})


def listed(text, role):
    """{tap spec: (marks, shape)} of one model's section."""
    section = text.split(f'{role}: ')[1].split('\n\n')[0]
    rows = {}
    for line in section.splitlines()[1:]:
        match = re.match(r'^(.)(.) (.+?)\s+(\([\d, ]+\))(  pre-ReLU)?$', line)
        assert match, line
        rows[match.group(3)] = (match.group(1) + match.group(2), match.group(4))
    return rows


@pytest.mark.slow
@pytest.mark.parametrize('config,sizes', [
    ('configs/imagenet/inception_bn_kd_nst_resnet101.py',
     {"'backbone.in5b.preact'": '(1, 1024, 7, 7)',
      "dict(module='backbone.layer4.2.relu', io='input', call=2)": '(1, 2048, 7, 7)'}),
    ('configs/voc/faster-rcnn_inception-bn-nst-poly_fpn_distill-r101_voc0712.py',
     {"dict(module='neck', index=0)": '(1, 256, 149, 249)'}),
])
def test_list_taps_prints_the_taps_the_config_uses(config, sizes):
    result = list_taps(config, '--teacher')
    assert result.returncode == 0, result.stderr[-2000:]
    student, teacher = listed(result.stdout, 'student'), listed(result.stdout, 'teacher')
    used_student, used_teacher = config_taps(config)
    assert used_student and used_teacher
    for rows, used in ((student, used_student), (teacher, used_teacher)):
        assert used <= set(rows), used - set(rows)
        assert {spec for spec, (marks, _) in rows.items() if marks[0] == '*'} == used
    for spec, shape in sizes.items():
        assert student.get(spec, (None, None))[1] == shape or teacher.get(spec, (None, None))[1] == shape
    assert 'all found above' in result.stdout
    # Every ReLU input is listed per call, marked as a pre-activation.
    assert "dict(module='backbone.layer4.2.relu', io='input', call=2)" in teacher
    assert "dict(module='backbone.layer4.2.relu', io='input', call=3)" not in teacher


def test_list_taps_marks_pairs_and_fails_on_a_missing_tap(tmp_path):
    config = tmp_path / 'wrong_tap.py'
    config.write_text(
        "_base_ = ['%s']\n" % osp.join(REPO, 'configs', 'demo', 'digits_inception_bn_at.py') +
        "model = dict(distill=[dict(loss=dict(type='ATLoss'), student='backbone.in4z', "
        "teacher={{_base_.teacher_tap}})])\n")
    result = list_taps(str(config), '--teacher')
    assert result.returncode == 1
    assert 'NOT FOUND: student backbone.in4z' in result.stdout
    student, teacher = listed(result.stdout, 'student'), listed(result.stdout, 'teacher')
    # The demo's 64 px digits: stride-16 maps are 4 x 4 in both networks, so they pair exactly.
    assert student["'backbone.in4d.preact'"] == (' ~', '(1, 152, 4, 4)')
    assert teacher["dict(module='backbone.layer3.1.relu', io='input', call=1)"][0] == '*~'
    assert student["'head'"][0] == '  '   # logits: no spatial size


def test_list_taps_needs_a_size_when_the_pipeline_sets_none(tmp_path):
    config = tmp_path / 'no_size.py'
    config.write_text(
        "_base_ = ['%s']\n" % osp.join(REPO, 'configs', 'demo', 'digits_inception_bn_at.py') +
        "train_dataloader = dict(dataset=dict(pipeline=[dict(type='LoadImageFromFile')]))\n")
    result = list_taps(str(config))
    assert result.returncode != 0 and '--shape H W' in result.stderr
    assert list_taps(str(config), '--shape', '64', '64').returncode == 0
