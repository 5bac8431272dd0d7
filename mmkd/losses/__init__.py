from .ab import ABLoss
from .at import ATLoss
from .cwd import CWDLoss
from .dist import DISTLoss
from .dkd import DKDLoss
from .fitnet import FitNetLoss
from .fsp import FSPLoss
from .grad_at import GradATLoss
from .kd import KDLoss
from .mgd import MGDLoss
from .nst import NSTLoss
from .pkd import PKDLoss
from .rkd import RKDLoss

__all__ = ['ABLoss', 'ATLoss', 'CWDLoss', 'DISTLoss', 'DKDLoss', 'FitNetLoss', 'FSPLoss', 'GradATLoss',
           'KDLoss', 'MGDLoss', 'NSTLoss', 'PKDLoss', 'RKDLoss']
