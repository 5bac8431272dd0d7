from .ab import ABLoss
from .at import ATLoss
from .fitnet import FitNetLoss
from .fsp import FSPLoss
from .grad_at import GradATLoss
from .kd import KDLoss
from .nst import NSTLoss

__all__ = ['ABLoss', 'ATLoss', 'FitNetLoss', 'FSPLoss', 'GradATLoss', 'KDLoss', 'NSTLoss']
