from .ab import ABLoss
from .at import ATLoss
from .fitnet import FitNetLoss
from .fsp import FSPLoss
from .kd import KDLoss
from .nst import NSTLoss

__all__ = ['ABLoss', 'ATLoss', 'FitNetLoss', 'FSPLoss', 'KDLoss', 'NSTLoss']
